package main

import (
	"context"
	"os"
	"os/user"

	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/store"
)

func runBootstrap(ctx context.Context, cfg config.Config, _ []string) error {
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	actor := "operator:unknown"
	if u, err := user.Current(); err == nil {
		actor = "operator:" + u.Username
	}
	return bootstrap(ctx, db, cfg.Bootstrap, "operator", actor, log)
}

// bootstrap creates the first organisation and owner, or says it exists.
func bootstrap(ctx context.Context, db *bun.DB, b config.Bootstrap, actorType, actorID string, log zerolog.Logger) error {
	res, err := store.Bootstrap(ctx, db, store.BootstrapInput{
		OrgName:       b.OrgName,
		OrgSlug:       b.OrgSlug,
		PlanID:        "team",
		OwnerEmail:    b.OwnerEmail,
		OwnerPassword: b.OwnerPassword,
		ActorType:     actorType,
		ActorID:       actorID,
	})
	if err != nil {
		return err
	}
	if !res.Created {
		log.Info().Str("org_id", res.Org.ID).Str("slug", res.Org.Slug).Msg("bootstrap: organisation exists, nothing changed")
		return nil
	}
	ev := log.Info().Str("org_id", res.Org.ID).Str("slug", res.Org.Slug).Str("owner_user_id", res.Owner.ID).Str("owner_email", res.Owner.Email)
	if res.UserExisted {
		ev = ev.Bool("existing_user_kept_password", true)
	}
	ev.Msg("bootstrap: organisation and owner created")
	return nil
}
