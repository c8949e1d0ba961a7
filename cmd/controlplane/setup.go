package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/workflows"
)

// runSetup prepares the Temporal namespace for tenant workflows, once and
// idempotently, before any api or worker serves: the namespace with its
// retention, and the search attributes tenant workflows carry. Until it
// has run, /readyz says not ready and creations answer 503.
func runSetup(ctx context.Context, cfg config.Config, _ []string) error {
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	tc, err := dialTemporal(ctx, cfg, log, nil)
	if err != nil {
		return err
	}
	defer tc.Close()
	ns := cfg.TemporalNamespace
	retention := durationpb.New(cfg.TemporalRetention)
	desc, err := tc.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	var notFound *serviceerror.NamespaceNotFound
	switch {
	case errors.As(err, &notFound):
		_, err = tc.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace: ns, WorkflowExecutionRetentionPeriod: retention,
			Description: "IntelliAuth control plane: tenant sagas",
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("register namespace %s: %w", ns, err)
		}
		log.Info().Str("namespace", ns).Dur("retention", cfg.TemporalRetention).Msg("namespace registered")
	case err != nil:
		return fmt.Errorf("describe namespace %s: %w", ns, err)
	case desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration() != cfg.TemporalRetention:
		if _, err := tc.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
			Namespace: ns, Config: &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: retention},
		}); err != nil {
			return fmt.Errorf("set the retention of namespace %s: %w", ns, err)
		}
		log.Info().Str("namespace", ns).Dur("retention", cfg.TemporalRetention).Msg("namespace retention set")
	}
	// A namespace just registered takes a moment to reach every service.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = addSearchAttributes(ctx, tc, ns)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return err
	}
	log.Info().Str("namespace", ns).Msg("temporal set up for tenant workflows")
	return nil
}

// addSearchAttributes adds the search attributes the namespace lacks; those
// already there are kept.
func addSearchAttributes(ctx context.Context, tc client.Client, namespace string) error {
	missing, err := workflows.MissingSearchAttributes(ctx, tc, namespace)
	if err != nil || len(missing) == 0 {
		return err
	}
	_, err = tc.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes to namespace %s: %w", namespace, err)
	}
	return nil
}
