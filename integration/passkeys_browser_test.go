package integration

import (
	"net"
)

// console is the dev process's console URL: its listen address by the
// name localhost (dev's default CP_CONSOLE_URL), since a passkey's
// relying party id cannot be an IP address.
func (p *devProcess) console() string {
	_, port, _ := net.SplitHostPort(p.api)
	return "http://" + net.JoinHostPort("localhost", port)
}
