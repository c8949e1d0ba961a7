package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/intelliauth/controlplane/internal/auditchain"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/logging"
	"github.com/intelliauth/controlplane/internal/store"
)

// Exit statuses of audit verify besides 0 (the chain is whole) and 2
// (usage).
const (
	exitTampered exitStatus = 1
	// exitUnreadable (3): the database or a file could not be read.
)

const auditUsage = `usage: controlplane audit verify -org <org_id> [-export <file.ndjson> [-head <head.json> -keys <keys.json>]]

Recomputes an organisation's audit chain and names its first bad event: edited (its hash
does not match its content), deleted (seqs missing), reordered, or a head that is not the
last event. From the database (CP_DATABASE_URL), in seq order from the chain's checkpoint
(where retention's purge left it), against the stored head; or
from an NDJSON export (GET /organizations/{org_id}/events, Accept: application/x-ndjson),
against a signed head kept from GET /organizations/{org_id}/audit-chain (-head, the answer
as saved, fetched after the export: its signed checkpoint says where a purged trail starts)
whose signature is checked with the keys of GET /api/v1/audit-chain/keys (-keys).
Exit status: 0 whole, 1 a bad event found, 2 usage, 3 a source could not be read.
`

// runAudit is `controlplane audit verify`.
func runAudit(ctx context.Context, cfg config.Config, args []string) error {
	if len(args) == 0 || args[0] != "verify" {
		fmt.Fprint(os.Stderr, auditUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	org := fs.String("org", "", "the organisation's id (org_…)")
	export := fs.String("export", "", "an NDJSON export of its events (none: the database)")
	headFile := fs.String("head", "", "a signed head the chain must reach (with -export)")
	keysFile := fs.String("keys", "", "the published keys to check the head's signature with (with -head)")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || *org == "" ||
		(*headFile != "") != (*keysFile != "") || (*headFile != "" && *export == "") {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, auditUsage)
			return nil
		}
		fmt.Fprint(os.Stderr, auditUsage)
		return exitUsage
	}
	if *export != "" {
		return verifyExportFile(os.Stdout, *org, *export, *headFile, *keysFile)
	}
	log := logging.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if cfg.DatabaseURL == "" {
		fmt.Fprintln(os.Stderr, "controlplane audit verify: CP_DATABASE_URL is required without -export")
		return exitUsage
	}
	db, err := store.OpenPool(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		log.Error().Err(err).Msg("postgres unreachable")
		return exitUnreadable
	}
	defer db.Close()
	rep, err := store.VerifyChain(ctx, db, *org)
	if err != nil {
		log.Error().Err(err).Str("org_id", *org).Msg("the chain could not be read")
		return exitUnreadable
	}
	if rep.Unchained > 0 {
		fmt.Printf("note: %d events are not chained yet (written during an upgrade; the next event or the workers chain them)\n", rep.Unchained)
	}
	if rep.Problem != nil {
		fmt.Printf("audit chain of %s: %s (%d events before it are good)\n", *org, rep.Problem.Message, rep.Checked)
		return exitTampered
	}
	from := "from its first event"
	if rep.Checkpoint.Seq > 0 {
		from = fmt.Sprintf("after its checkpoint (seq %d, hash %s: retention purged the events up to it)", rep.Checkpoint.Seq, hex.EncodeToString(rep.Checkpoint.Hash))
	}
	fmt.Printf("audit chain of %s: %d events verified %s, up to the head %s\n", *org, rep.Checked, from, hex.EncodeToString(rep.Head))
	return nil
}

// verifyExportFile is audit verify of an export, against a signed head
// when given one.
func verifyExportFile(w io.Writer, org, path, headPath, keysPath string) error {
	var head *auditchain.Head
	if headPath != "" {
		var h auditchain.Head
		var keys struct {
			Keys []auditchain.PublicKey `json:"keys"`
		}
		if err := readAnswer(headPath, &h); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane audit verify: %v\n", err)
			return exitUnreadable
		}
		if err := readAnswer(keysPath, &keys); err != nil {
			fmt.Fprintf(os.Stderr, "controlplane audit verify: %v\n", err)
			return exitUnreadable
		}
		if h.OrgID != org {
			fmt.Fprintf(w, "the head in %s is of organization %s, not %s\n", headPath, h.OrgID, org)
			return exitTampered
		}
		if err := h.Verify(keys.Keys); err != nil {
			fmt.Fprintf(w, "the head in %s: %v\n", headPath, err)
			return exitTampered
		}
		head = &h
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane audit verify: %v\n", err)
		return exitUnreadable
	}
	defer f.Close()
	rep, err := auditchain.VerifyExport(f, org, head)
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane audit verify: %s: %v\n", path, err)
		return exitUnreadable
	}
	if rep.Unchained > 0 {
		fmt.Fprintf(w, "note: %d events of the export are not chained yet\n", rep.Unchained)
	}
	switch cp := head.GetCheckpoint(); {
	case rep.First > 1 && cp.Seq > 0 && rep.First == cp.Seq+1:
		fmt.Fprintf(w, "note: the trail starts after the signed head's checkpoint (seq %d): retention purged the events before it\n", cp.Seq)
	case rep.First > 1:
		fmt.Fprintf(w, "note: the export starts at seq %d: that event is taken as given\n", rep.First)
	}
	if rep.Problem != nil {
		fmt.Fprintf(w, "audit chain of %s: %s (%d events before it are good)\n", org, rep.Problem.Message, rep.Checked)
		return exitTampered
	}
	what := "no signed head given"
	if head != nil {
		what = fmt.Sprintf("it reaches the head signed at %s (length %d)", head.SignedAt.Format("2006-01-02T15:04:05Z07:00"), head.Length)
	}
	fmt.Fprintf(w, "audit chain of %s: %d events verified (seq %d to %d); %s\n", org, rep.Checked, rep.First, rep.Last, what)
	return nil
}

// readAnswer reads a JSON answer of the API as saved: its envelope's data,
// or the bare object.
func readAnswer(path string, into any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &env) == nil && len(env.Data) > 0 {
		b = env.Data
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
