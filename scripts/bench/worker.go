package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Workers are this program re-executed with -worker: each holds one group
// of receiving connections, so that the same command can open more
// connections than one process may (its open-file limit).
//
// The parent writes the group's spec as JSON on the first line of the
// worker's stdin, then commands, one per line: "report", "quiet" and
// "close". The worker answers on stdout with JSON lines: {"progress":...}
// every 20ms, {"connected":true} once set up, {"report":...} when asked.
// It exits on "close" or when its stdin ends (the parent is gone).

// workerMsg is one line from a worker.
type workerMsg struct {
	Progress  *groupProgress `json:"progress,omitempty"`
	Connected bool           `json:"connected,omitempty"`
	Report    *groupReport   `json:"report,omitempty"`
	Err       string         `json:"err,omitempty"`
}

// workers starts worker processes and remembers them for CPU accounting.
type workers struct {
	exe   string
	procs *procs
}

// remoteGroup is a group held by a worker process.
type remoteGroup struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	inMu sync.Mutex
	done chan struct{}
	conn chan error
	rep  chan groupReport
	mu   sync.Mutex
	last groupProgress
}

func (w *workers) start(ctx context.Context, spec groupSpec) (*remoteGroup, error) {
	cmd := exec.Command(w.exe, "-worker")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w.procs.add(cmd.Process.Pid)
	g := &remoteGroup{cmd: cmd, in: in, done: make(chan struct{}), conn: make(chan error, 1), rep: make(chan groupReport, 1)}
	go g.readLoop(out)
	b, _ := json.Marshal(spec)
	if err := g.send(string(b)); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

func (g *remoteGroup) send(line string) error {
	g.inMu.Lock()
	defer g.inMu.Unlock()
	_, err := io.WriteString(g.in, line+"\n")
	return err
}

func (g *remoteGroup) readLoop(out io.Reader) {
	defer close(g.done)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		var m workerMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		switch {
		case m.Progress != nil:
			g.mu.Lock()
			g.last = *m.Progress
			g.mu.Unlock()
		case m.Connected:
			g.conn <- nil
		case m.Report != nil:
			g.rep <- *m.Report
		case m.Err != "":
			g.conn <- errors.New(m.Err)
		}
	}
	_ = g.cmd.Wait()
}

func (g *remoteGroup) connect(ctx context.Context) error {
	select {
	case err := <-g.conn:
		return err
	case <-g.done:
		return fmt.Errorf("worker exited while connecting")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *remoteGroup) progress() groupProgress {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last
}

func (g *remoteGroup) report() (groupReport, error) {
	if err := g.send("report"); err != nil {
		return groupReport{}, err
	}
	select {
	case r := <-g.rep:
		return r, nil
	case <-g.done:
		return groupReport{}, fmt.Errorf("worker exited before its report")
	case <-time.After(20 * time.Second):
		return groupReport{}, fmt.Errorf("worker report timed out")
	}
}

func (g *remoteGroup) quiet() { _ = g.send("quiet") }

func (g *remoteGroup) close() {
	_ = g.send("close")
	_ = g.in.Close()
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// workerMain runs one worker: see the comment at the top of this file.
func workerMain() int {
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return 2
	}
	var spec groupSpec
	if err := json.Unmarshal(in.Bytes(), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "bench worker: %v\n", err)
		return 2
	}
	var outMu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	emit := func(m workerMsg) {
		outMu.Lock()
		_ = enc.Encode(m)
		outMu.Unlock()
	}
	g := newLocalGroup(spec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var last groupProgress
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if p := g.progress(); p != last {
				emit(workerMsg{Progress: &p})
				last = p
			}
		}
	}()
	go func() {
		if err := g.connect(ctx); err != nil {
			emit(workerMsg{Err: err.Error()})
			return
		}
		p := g.progress()
		emit(workerMsg{Progress: &p})
		emit(workerMsg{Connected: true})
	}()
	for in.Scan() {
		switch in.Text() {
		case "report":
			r, _ := g.report()
			emit(workerMsg{Report: &r})
		case "quiet":
			g.quiet()
		case "close":
			g.close()
			return 0
		}
	}
	g.close()
	return 0
}
