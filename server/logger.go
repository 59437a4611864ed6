package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// gnetLogger routes gnet's own log lines into the daemon's slog logger.
// gnet's info lines go to the debug level, and so does one warning that
// is routine: see staleEvent.
type gnetLogger struct{ log *slog.Logger }

func (l gnetLogger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...), "component", "gnet")
	}
}

func (l gnetLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l gnetLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l gnetLogger) Warnf(format string, args ...any) {
	level := slog.LevelWarn
	if strings.Contains(format, staleEvent) {
		level = slog.LevelDebug
	}
	l.logf(level, format, args...)
}
func (l gnetLogger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
func (l gnetLogger) Fatalf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }

// staleEvent is how gnet v2.10 words a poll event for a descriptor its
// loop closed while handling an earlier event of the same batch. Clients
// that disconnect together produce them by the hundred (a leave notice
// written to a peer that is gone closes that peer at once, ahead of its
// own event), and gnet drops the event: a warning each would bury the
// log (270 lines when 1000 clients closed together).
const staleEvent = "of a stale connection"
