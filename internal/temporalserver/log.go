package temporalserver

import (
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/rs/zerolog"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// zlog writes the Temporal server's log lines through zerolog, so the dev
// process has one log stream in one format. The server logs a great deal at
// info level; its lines are kept from warn upwards unless the process logs
// at debug. While the server stops, its services lose each other in turn
// and complain about it; stopping silences the server then, unless the
// process logs at debug.
//
// The server derives a logger with tags for nearly every request, task and
// workflow it touches, and logs through few of them; With keeps the tags
// as they are and they are written only with a line that is written.
type zlog struct {
	l        zerolog.Logger
	tags     []tag.Tag
	stopping *atomic.Bool
}

func newLogger(l zerolog.Logger, stopping *atomic.Bool) log.Logger {
	if l.GetLevel() > zerolog.DebugLevel && l.GetLevel() < zerolog.WarnLevel {
		l = l.Level(zerolog.WarnLevel)
	}
	return zlog{l: l.With().Str("component", "temporal").Logger(), stopping: stopping}
}

func (z zlog) emit(level zerolog.Level, msg string, tags []tag.Tag) {
	if z.stopping.Load() && z.l.GetLevel() > zerolog.DebugLevel {
		return
	}
	e := z.l.WithLevel(level)
	if e == nil {
		return
	}
	for _, t := range z.tags {
		e = field(e, t)
	}
	for _, t := range tags {
		e = field(e, t)
	}
	e.Msg(msg)
}

func field(e *zerolog.Event, t tag.Tag) *zerolog.Event {
	switch v := t.Value().(type) {
	case error:
		return e.AnErr(t.Key(), v)
	case fmt.Stringer:
		return e.Str(t.Key(), v.String())
	default:
		return e.Interface(t.Key(), v)
	}
}

func (z zlog) Debug(msg string, tags ...tag.Tag)  { z.emit(zerolog.DebugLevel, msg, tags) }
func (z zlog) Info(msg string, tags ...tag.Tag)   { z.emit(zerolog.InfoLevel, msg, tags) }
func (z zlog) Warn(msg string, tags ...tag.Tag)   { z.emit(zerolog.WarnLevel, msg, tags) }
func (z zlog) Error(msg string, tags ...tag.Tag)  { z.emit(zerolog.ErrorLevel, msg, tags) }
func (z zlog) DPanic(msg string, tags ...tag.Tag) { z.emit(zerolog.ErrorLevel, msg, tags) }
func (z zlog) Panic(msg string, tags ...tag.Tag) {
	z.emit(zerolog.ErrorLevel, msg, tags)
	panic(msg)
}

// Fatal logs at error level and panics rather than exiting, so the process
// still stops its other parts in order.
func (z zlog) Fatal(msg string, tags ...tag.Tag) {
	z.emit(zerolog.ErrorLevel, msg, tags)
	panic(msg)
}

// With returns a logger with the tags prepended to every line. The tags
// are kept, not serialized: most of these loggers never write a line.
func (z zlog) With(tags ...tag.Tag) log.Logger {
	return zlog{l: z.l, tags: append(slices.Clip(z.tags), tags...), stopping: z.stopping}
}
