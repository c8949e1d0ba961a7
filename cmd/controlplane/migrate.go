package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/schema"
)

func runMigrate(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) != 1 {
		return errors.New("migrate needs one of: up, down, status")
	}
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	switch args[0] {
	case "up":
		names, err := schema.Up(ctx, db)
		if err != nil {
			return err
		}
		log.Info().Strs("applied", names).Msg("migrations applied")
		// Events written before the audit chain (or by the previous
		// release until now) are chained before the new release writes.
		n, err := store.ChainBacklogs(ctx, db)
		if err != nil {
			return err
		}
		if n > 0 {
			log.Info().Int("events", n).Msg("audit events chained")
		}
	case "down":
		names, err := schema.Down(ctx, db)
		if err != nil {
			return err
		}
		log.Info().Strs("rolled_back", names).Msg("migrations rolled back")
	case "status":
		list, err := schema.List(ctx, db)
		if err != nil {
			return err
		}
		for _, m := range list {
			state := "pending"
			if m.Applied {
				state = fmt.Sprintf("applied (group %d)", m.Group)
			}
			fmt.Printf("%s_%s\t%s\n", m.Name, m.Comment, state)
		}
	default:
		return fmt.Errorf("migrate: unknown direction %q (up, down, status)", args[0])
	}
	return nil
}
