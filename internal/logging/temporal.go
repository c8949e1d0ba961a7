package logging

import (
	"fmt"

	"github.com/rs/zerolog"
	sdklog "go.temporal.io/sdk/log"
)

// Temporal adapts a zerolog logger to the Temporal SDK's logger interface.
// The SDK logs routine worker events at info; they are kept at debug so the
// process's info stream stays about the control plane.
func Temporal(l zerolog.Logger) sdklog.Logger {
	return sdkLogger{l.With().Str("component", "temporal-sdk").Logger()}
}

type sdkLogger struct{ l zerolog.Logger }

func (s sdkLogger) Debug(msg string, kv ...any) { fields(s.l.Debug(), kv).Msg(msg) }
func (s sdkLogger) Info(msg string, kv ...any)  { fields(s.l.Debug(), kv).Msg(msg) }
func (s sdkLogger) Warn(msg string, kv ...any)  { fields(s.l.Warn(), kv).Msg(msg) }
func (s sdkLogger) Error(msg string, kv ...any) { fields(s.l.Error(), kv).Msg(msg) }

// With returns a logger with the key-value pairs on every line.
func (s sdkLogger) With(kv ...any) sdklog.Logger {
	return sdkLogger{s.l.With().Fields(pairs(kv)).Logger()}
}

func fields(e *zerolog.Event, kv []any) *zerolog.Event {
	if e == nil {
		return nil
	}
	return e.Fields(pairs(kv))
}

func pairs(kv []any) map[string]any {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[fmt.Sprint(kv[i])] = kv[i+1]
	}
	return m
}
