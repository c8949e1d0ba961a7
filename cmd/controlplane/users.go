package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/store"
)

// runUsers is an operator's acts on a person's account that the person
// cannot do themselves: `users remove-second-factors -email … -reason …`
// for someone who lost every second factor and every recovery code (after
// checking who they are out of band).
func runUsers(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) == 0 || args[0] != "remove-second-factors" {
		fmt.Fprintln(os.Stderr, "usage: controlplane users remove-second-factors -email <email> -reason <why>")
		return exitUsage
	}
	fs := flag.NewFlagSet("users remove-second-factors", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	email := fs.String("email", "", "the person's email")
	reason := fs.String("reason", "", "why, as written to the audit trail (the ticket, how their identity was checked)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || strings.TrimSpace(*email) == "" || strings.TrimSpace(*reason) == "" {
		fmt.Fprintln(os.Stderr, "usage: controlplane users remove-second-factors -email <email> -reason <why> (both required)")
		return exitUsage
	}
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	db, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	operator := "operator:unknown"
	if u, err := user.Current(); err == nil {
		operator = "operator:" + u.Username
	}
	u, err := store.RemoveSecondFactors(ctx, db, strings.ToLower(strings.TrimSpace(*email)), operator, strings.TrimSpace(*reason))
	if err != nil {
		return err
	}
	log.Info().Str("user_id", u.ID).Str("operator", operator).Msg("second factors and recovery codes removed, every session ended; written as user.mfa_removed")
	return nil
}
