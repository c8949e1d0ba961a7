package temporalserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	uiapi "github.com/temporalio/ui-server/v2/server/api"
	uiauth "github.com/temporalio/ui-server/v2/server/auth"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uicors "github.com/temporalio/ui-server/v2/server/cors"
	uicsrf "github.com/temporalio/ui-server/v2/server/csrf"
	uiheaders "github.com/temporalio/ui-server/v2/server/headers"
	uiroute "github.com/temporalio/ui-server/v2/server/route"
	uiassets "github.com/temporalio/ui-server/v2/ui"
)

// codecPath is where the UI's listener serves the codec endpoint, when
// there is one.
const codecPath = "/codec"

// uiServer is the Temporal Web UI on a listener of ours.
type uiServer struct {
	http *http.Server
	ln   net.Listener
}

// startUI serves the Temporal UI on addr, for the frontend at
// frontendAddr. codec, when not nil, is given the UI's origins and serves
// /codec/ on the same listener; the UI decodes payloads through it.
func startUI(addr, frontendAddr, namespace string, codec func(origins []string) http.Handler) (*uiServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s is not free (is another server running?): %w", addr, err)
	}
	host, portStr, _ := net.SplitHostPort(ln.Addr().String())
	port, _ := strconv.Atoi(portStr)
	hosts := ownHosts(host, port)
	cfg := &uiconfig.Config{
		Host:                host,
		Port:                port,
		TemporalGRPCAddress: frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
	}
	mux := http.NewServeMux()
	if codec != nil {
		origins := make([]string, len(hosts))
		for i, h := range hosts {
			origins[i] = "http://" + h
		}
		cfg.Codec.Endpoint = "http://" + net.JoinHostPort(host, portStr) + codecPath
		mux.Handle(codecPath+"/", codec(origins))
	}
	ui, err := uiHandler(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux.Handle("/", ui)
	s := &uiServer{ln: ln, http: &http.Server{Handler: refuseForeignHosts(hosts, mux), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

func (s *uiServer) stop() { _ = s.http.Close() }

// ownHosts are the Host headers a browser sends to the UI at host:port:
// the address it listens on and, on loopback, every loopback name.
func ownHosts(host string, port int) []string {
	p := strconv.Itoa(port)
	hosts := []string{net.JoinHostPort(host, p)}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		for _, name := range []string{"127.0.0.1", "localhost", "::1"} {
			if h := net.JoinHostPort(name, p); h != hosts[0] {
				hosts = append(hosts, h)
			}
		}
	}
	return hosts
}

// refuseForeignHosts answers 421 to a request whose Host is not one of
// the UI's own. The UI has no sign-in and allows writes (terminate,
// reset); a page of another site that rebinds its name to 127.0.0.1 is
// same-origin with the UI in the browser's eyes, but its requests still
// name that site in Host.
func refuseForeignHosts(hosts []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, h := range hosts {
			if strings.EqualFold(r.Host, h) {
				next.ServeHTTP(w, r)
				return
			}
		}
		http.Error(w, "this server answers only to "+strings.Join(hosts, ", "), http.StatusMisdirectedRequest)
	})
}

// uiHandler builds the UI as uiserver.NewServer (ui-server v2.54.1)
// does, with the same middleware in the same order and the same routes,
// but without its Start: that binds a listener of its own, exits the
// process when it cannot, and leaves no place for the Host check. Compare
// with NewServer when ui-server is upgraded.
func uiHandler(cfg *uiconfig.Config) (http.Handler, error) {
	cfgProvider, err := uiconfig.NewConfigProviderWithRefresh(cfg)
	if err != nil {
		return nil, fmt.Errorf("temporal UI config: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip())
	e.Use(uicors.CORSMiddleware(uicors.CORSConfig{
		AllowHeaders: []string{
			echo.HeaderOrigin, echo.HeaderContentType, echo.HeaderAccept,
			echo.HeaderXCSRFToken, echo.HeaderAuthorization, uiauth.AuthorizationExtrasHeader,
			"Caller-Type",
		},
		AllowCredentials: true,
		ConfigProvider:   cfgProvider,
	}))
	e.Use(middleware.Secure())
	cookieSecure := !cfg.CORS.CookieInsecure
	e.Use(uicsrf.EnsureTokenCookie(cookieSecure))
	e.Use(middleware.CSRFWithConfig(uicsrf.MiddlewareConfig(cfgProvider, cookieSecure)))
	e.Pre(uiroute.PublicPath(cfg.PublicPath))
	uiroute.SetHealthRoute(e)
	forward := []uiapi.Middleware{uiheaders.WithForwardHeaders([]string{uiauth.AuthorizationExtrasHeader, "Caller-Type"})}
	if err := uiroute.SetAPIRoutes(e, cfgProvider, forward); err != nil {
		return nil, err
	}
	uiroute.SetAuthRoutes(e, cfgProvider)
	assets, err := uiassets.Assets()
	if err != nil {
		return nil, fmt.Errorf("temporal UI assets: %w", err)
	}
	if assets, err = fs.Sub(assets, "local"); err != nil {
		return nil, fmt.Errorf("temporal UI assets: %w", err)
	}
	if err := uiroute.SetUIRoutes(e, cfg.PublicPath, assets); err != nil {
		return nil, errors.Join(errors.New("temporal UI routes"), err)
	}
	uiroute.SetRenderRoute(e, cfg.PublicPath)
	return e, nil
}
