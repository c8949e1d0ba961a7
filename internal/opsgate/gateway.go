// Package opsgate is the operator gateway: the one way operators reach
// Temporal. It serves Temporal's WorkflowService (the `temporal` CLI and
// any SDK talk to it as to a frontend) to callers with a client
// certificate of the operators' CA, forwards what an operator needs (reads,
// queries, repairs, terminate, reset) over the control plane's own
// connection, and refuses the rest. On every write it replaces whatever
// identity the caller typed with the certificate's, sealed under the key
// ring (internal/operator), so the saga and the audit trail name a verified
// operator. Its watcher writes each terminate and reset of a tenant's saga
// to the trail.
package opsgate

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/proxy"
	updatepb "go.temporal.io/api/update/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/intelliauth/controlplane/internal/operator"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/workflows"
)

// Gateway forwards operators' requests to Upstream, the control plane's
// connection to the Temporal frontend.
type Gateway struct {
	Upstream  workflowservice.WorkflowServiceClient
	Namespace string
	Keys      *seal.Ring
	Log       zerolog.Logger
	// Now is the clock assertions are stamped with (time.Now when nil).
	Now func() time.Time
	// Trail, when set, writes the resets the gateway forwards to the
	// audit trail (a reset of a closed run terminates nothing the watcher
	// would see).
	Trail *Watcher
}

// TLSConfig is the TLS configuration of the gateway's listener from its
// certificate and key and the operators' CA (PEM): TLS 1.2 or later, and
// a client certificate for client authentication that chains to the
// operators' CA and is not revoked (its SHA-256 fingerprint in revoked),
// or no handshake at all.
func TLSConfig(certPEM, keyPEM, clientCAPEM []byte, revoked [][32]byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("the operator gateway's certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(clientCAPEM) {
		return nil, errors.New("the operators' CA holds no PEM certificate")
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		MinVersion: tls.VersionTLS12,
		// Runs once the chain is verified: a certificate withdrawn before
		// it expires is refused by its fingerprint.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			if slices.Contains(revoked, sha256.Sum256(cs.PeerCertificates[0].Raw)) {
				return errors.New("this operator certificate is revoked (CP_OPERATOR_REVOKED)")
			}
			return nil
		}}, nil
}

// Serve serves the gateway on ln with TLS until ctx ends.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener, cfg *tls.Config) error {
	srv, err := g.server(cfg)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			srv.Stop()
		}
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

func (g *Gateway) server(cfg *tls.Config) (*grpc.Server, error) {
	// Callers' own metadata (an Authorization they send, say) is not
	// forwarded: upstream, the gateway speaks as the control plane.
	svc, err := proxy.NewWorkflowServiceProxyServer(proxy.WorkflowServiceProxyOptions{Client: g.Upstream, DisableHeaderForwarding: true})
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)), grpc.ChainUnaryInterceptor(g.intercept),
		grpc.StreamInterceptor(func(any, grpc.ServerStream, *grpc.StreamServerInfo, grpc.StreamHandler) error {
			return status.Error(codes.PermissionDenied, "the operator gateway forwards no streams")
		}))
	workflowservice.RegisterWorkflowServiceServer(srv, svc)
	return srv, nil
}

// forwarded are the WorkflowService methods the gateway forwards: what the
// runbook uses to find, inspect and repair sagas. Writes (true) are
// stamped with the operator's identity and logged.
var forwarded = map[string]bool{
	"GetSystemInfo":                      false,
	"DescribeNamespace":                  false,
	"GetSearchAttributes":                false,
	"ListWorkflowExecutions":             false,
	"ListOpenWorkflowExecutions":         false,
	"ListClosedWorkflowExecutions":       false,
	"CountWorkflowExecutions":            false,
	"DescribeWorkflowExecution":          false,
	"GetWorkflowExecutionHistory":        false,
	"GetWorkflowExecutionHistoryReverse": false,
	"QueryWorkflow":                      false,
	"PollWorkflowExecutionUpdate":        false,
	"DescribeTaskQueue":                  false,
	"UpdateWorkflowExecution":            true,
	"SignalWorkflowExecution":            true,
	"RequestCancelWorkflowExecution":     true,
	"TerminateWorkflowExecution":         true,
	"ResetWorkflowExecution":             true,
	// The audit retention Schedule: described, and triggered, paused or
	// unpaused (docs/runbook.md, Audit retention).
	"DescribeSchedule": false,
	"ListSchedules":    false,
	"PatchSchedule":    true,
}

// intercept is every call: who (the certificate), whether it is forwarded
// at all, and for writes the identity stamped in place of the caller's.
func (g *Gateway) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	name, err := Identity(ctx)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	method := path.Base(info.FullMethod)
	write, ok := forwarded[method]
	if !ok {
		g.Log.Warn().Str("operator", name).Str("method", method).Msg("operator gateway: refused a method it does not forward")
		return nil, status.Errorf(codes.PermissionDenied, "the operator gateway does not forward %s", method)
	}
	if ns, ok := req.(interface{ GetNamespace() string }); ok && ns.GetNamespace() != g.Namespace && method != "GetSystemInfo" {
		return nil, status.Errorf(codes.PermissionDenied, "the operator gateway serves namespace %q only", g.Namespace)
	}
	if write {
		workflowID, err := g.Stamp(req, name)
		if err != nil {
			return nil, err
		}
		g.Log.Info().Str("operator", name).Str("method", method).Str("workflow_id", workflowID).Msg("operator gateway: forwarded a write")
	}
	resp, err := next(ctx, req)
	if r, ok := resp.(*workflowservice.ResetWorkflowExecutionResponse); ok && err == nil && g.Trail != nil {
		in := req.(*workflowservice.ResetWorkflowExecutionRequest)
		reason, _ := splitReason(in.GetReason())
		if rerr := g.Trail.RecordReset(context.WithoutCancel(ctx), in.GetWorkflowExecution().GetWorkflowId(), r.GetRunId(), name, reason); rerr != nil {
			// The watcher still finds a reset that terminated a running
			// saga; say what it may miss.
			g.Log.Error().Err(rerr).Str("operator", name).Str("workflow_id", in.GetWorkflowExecution().GetWorkflowId()).Msg("operator gateway: a reset was not written to the audit trail")
		}
	}
	return resp, err
}

// Identity is the operator the client certificate of ctx's connection
// names: its first email address, or else its common name.
func Identity(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", errors.New("the operator gateway needs a client certificate of the operators' CA")
	}
	leaf := ti.State.VerifiedChains[0][0]
	name := leaf.Subject.CommonName
	if len(leaf.EmailAddresses) > 0 {
		name = leaf.EmailAddresses[0]
	}
	if !operator.ValidName(name) {
		return "", errors.New("the client certificate names no operator: give it an email address or a common name")
	}
	return name, nil
}

// Stamp writes the operator's sealed assertion over whatever identity the
// request carries and, for an update, into its header, bound to the
// workflow, the update's name and id. It returns the workflow's id.
func (g *Gateway) Stamp(req any, name string) (string, error) {
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	assert := func(workflowID, what, id string) (operator.Assertion, error) {
		a, err := operator.Stamp(g.Keys, name, operator.Subject(workflowID, what, id), now())
		if err != nil {
			return a, status.Error(codes.InvalidArgument, err.Error())
		}
		return a, nil
	}
	switch r := req.(type) {
	case *workflowservice.UpdateWorkflowExecutionRequest:
		u := r.GetRequest()
		if u == nil || u.GetInput() == nil || u.GetInput().GetName() == "" || r.GetWorkflowExecution().GetWorkflowId() == "" {
			return "", status.Error(codes.InvalidArgument, "an update names its workflow and its name")
		}
		if u.Meta == nil {
			u.Meta = &updatepb.Meta{}
		}
		if u.Meta.UpdateId == "" {
			u.Meta.UpdateId = uuid.NewString()
		}
		workflowID := r.GetWorkflowExecution().GetWorkflowId()
		a, err := assert(workflowID, u.Input.Name, u.Meta.UpdateId)
		if err != nil {
			return "", err
		}
		p, err := a.Payload()
		if err != nil {
			return "", status.Error(codes.Internal, "stamp the operator")
		}
		if u.Input.Header == nil {
			u.Input.Header = &commonpb.Header{}
		}
		if u.Input.Header.Fields == nil {
			u.Input.Header.Fields = map[string]*commonpb.Payload{}
		}
		u.Input.Header.Fields[operator.Header] = p
		u.Meta.Identity = operator.IdentityPrefix + name
		return workflowID, nil
	case *workflowservice.SignalWorkflowExecutionRequest:
		workflowID := r.GetWorkflowExecution().GetWorkflowId()
		r.Identity = operator.IdentityPrefix + name
		if r.Header != nil {
			delete(r.Header.Fields, operator.Header)
		}
		if legacyRepairSignals[r.GetSignalName()] {
			// A saga of the first revision takes repairs as signals whose
			// payload names the operator: it gets the certificate's name.
			p, err := converter.GetDefaultDataConverter().ToPayloads(map[string]string{"operator": name})
			if err != nil {
				return "", status.Error(codes.Internal, "stamp the operator")
			}
			r.Input = p
		}
		return workflowID, nil
	case *workflowservice.RequestCancelWorkflowExecutionRequest:
		r.Identity = operator.IdentityPrefix + name
		return r.GetWorkflowExecution().GetWorkflowId(), nil
	case *workflowservice.TerminateWorkflowExecutionRequest:
		workflowID := r.GetWorkflowExecution().GetWorkflowId()
		a, err := assert(workflowID, ActTerminate, "")
		if err != nil {
			return "", err
		}
		r.Identity = a.Identity()
		return workflowID, nil
	case *workflowservice.ResetWorkflowExecutionRequest:
		workflowID := r.GetWorkflowExecution().GetWorkflowId()
		a, err := assert(workflowID, ActReset, "")
		if err != nil {
			return "", err
		}
		// Temporal records a reset's reason, not its caller's identity.
		r.Identity = a.Identity()
		r.Reason = strings.TrimSpace(r.Reason + " " + a.Identity())
		return workflowID, nil
	case *workflowservice.PatchScheduleRequest:
		if id := r.GetScheduleId(); id != workflows.RetentionScheduleID && id != workflows.UsageScheduleID {
			return "", status.Errorf(codes.PermissionDenied, "the operator gateway patches the %s and %s schedules only", workflows.RetentionScheduleID, workflows.UsageScheduleID)
		}
		r.Identity = operator.IdentityPrefix + name
		return r.GetScheduleId(), nil
	}
	return "", status.Error(codes.PermissionDenied, "the operator gateway does not forward this write")
}

// What a terminate's or a reset's assertion is bound to.
const (
	ActTerminate = "terminate"
	ActReset     = "reset"
)

// legacyRepairSignals are the repair signals of the tenant saga's first
// revision.
var legacyRepairSignals = map[string]bool{"retry": true, "compensate": true, "cancel": true}
