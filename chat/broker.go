package chat

// Broker carries room-wide events to every room that shares it. The
// in-memory broker, the default, serves the rooms of one process; a cluster
// broker would live in a package of its own that imports chat.
type Broker interface {
	// Publish delivers ev to every subscriber, in publish order for one
	// publisher. It must not block on the network; it is safe for concurrent
	// use.
	Publish(ev *Event)
	// Subscribe registers deliver for every event published from now on.
	// deliver must not block.
	Subscribe(deliver func(*Event))
}

// MemoryBroker is the in-process [Broker]: Publish calls every subscriber
// on the publisher's goroutine.
type MemoryBroker struct {
	subs []func(*Event)
}

// NewMemoryBroker returns an empty in-process broker.
func NewMemoryBroker() *MemoryBroker { return &MemoryBroker{} }

// Publish calls each subscriber with ev. It is safe for concurrent use once
// every Subscribe call has returned.
func (b *MemoryBroker) Publish(ev *Event) {
	for _, deliver := range b.subs {
		deliver(ev)
	}
}

// Subscribe adds deliver. It must be called before the first Publish.
func (b *MemoryBroker) Subscribe(deliver func(*Event)) {
	b.subs = append(b.subs, deliver)
}
