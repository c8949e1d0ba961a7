package temporalserver

import (
	"fmt"

	"github.com/rs/zerolog"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// zlog writes the Temporal server's log lines through zerolog, so the dev
// process has one log stream in one format. The server logs a great deal at
// info level; its lines are kept from warn upwards unless the process logs
// at debug.
type zlog struct{ l zerolog.Logger }

func newLogger(l zerolog.Logger) log.Logger {
	if l.GetLevel() > zerolog.DebugLevel && l.GetLevel() < zerolog.WarnLevel {
		l = l.Level(zerolog.WarnLevel)
	}
	return zlog{l.With().Str("component", "temporal").Logger()}
}

func (z zlog) emit(e *zerolog.Event, msg string, tags []tag.Tag) {
	if e == nil {
		return
	}
	for _, t := range tags {
		switch v := t.Value().(type) {
		case error:
			e = e.AnErr(t.Key(), v)
		case fmt.Stringer:
			e = e.Str(t.Key(), v.String())
		default:
			e = e.Interface(t.Key(), v)
		}
	}
	e.Msg(msg)
}

func (z zlog) Debug(msg string, tags ...tag.Tag)  { z.emit(z.l.Debug(), msg, tags) }
func (z zlog) Info(msg string, tags ...tag.Tag)   { z.emit(z.l.Info(), msg, tags) }
func (z zlog) Warn(msg string, tags ...tag.Tag)   { z.emit(z.l.Warn(), msg, tags) }
func (z zlog) Error(msg string, tags ...tag.Tag)  { z.emit(z.l.Error(), msg, tags) }
func (z zlog) DPanic(msg string, tags ...tag.Tag) { z.emit(z.l.Error(), msg, tags) }
func (z zlog) Panic(msg string, tags ...tag.Tag) {
	z.emit(z.l.Error(), msg, tags)
	panic(msg)
}
func (z zlog) Fatal(msg string, tags ...tag.Tag) { z.emit(z.l.Fatal(), msg, tags) }

// With returns a logger with the tags prepended to every line.
func (z zlog) With(tags ...tag.Tag) log.Logger {
	c := z.l.With()
	for _, t := range tags {
		c = c.Interface(t.Key(), t.Value())
	}
	return zlog{c.Logger()}
}
