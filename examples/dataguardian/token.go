package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dataguardian/dataguardian/engine"
	"github.com/dataguardian/dataguardian/httpapi"
)

// tokenCommands are the subcommands of "dataguardian token". They open the
// metadata store directly, so they work without a server and while one
// runs on the same store.
var tokenCommands = []command{
	{name: "create", run: (*cli).tokenCreate, args: "--name NAME --permissions PERM[,PERM...] [--data-dir DIR] [--database-url URL]",
		summary: "Create an API token and print its secret on stdout, once: only its hash is stored.\n" +
			"Permissions: " + strings.Join(httpapi.AllPermissions, ", ") + ".",
		example: "TOKEN=$(dataguardian token create --name ci --permissions read,write,backups.run)"},
	{name: "list", run: (*cli).tokenList, args: "[--data-dir DIR] [--database-url URL] [--json]",
		summary: "List the API tokens: id, name, permissions, created and last used (never a secret).",
		example: "dataguardian token list"},
	{name: "revoke", run: (*cli).tokenRevoke, args: "ID [--data-dir DIR] [--database-url URL]",
		summary: "Revoke an API token at once: later requests with it answer 401.",
		example: "dataguardian token revoke 550e8400-e29b-41d4-a716-446655440000"},
}

// token runs a subcommand of "dataguardian token".
func (c *cli) token(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(c.stdout, "Usage:\n")
		for _, sub := range tokenCommands {
			fmt.Fprintf(c.stdout, "  dataguardian token %-6s %s\n", sub.name, sub.args)
		}
		fmt.Fprintf(c.stdout, "\nRun 'dataguardian token SUBCOMMAND --help' for its flags.\n")
		if len(args) == 0 {
			return usagef("missing subcommand: create, list or revoke")
		}
		return errHelp
	}
	for _, sub := range tokenCommands {
		if sub.name == args[0] {
			sub.name = "token " + sub.name
			c.cmd = &sub
			return sub.run(c, ctx, args[1:])
		}
	}
	return usagef("unknown subcommand %q: use create, list or revoke", args[0])
}

// tokenEngine opens the engine on the store sf selects, logging only
// warnings; the caller closes it.
func (c *cli) tokenEngine(ctx context.Context, sf *storeFlags) (*engine.Engine, error) {
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return c.openEngine(ctx, sf, engine.Config{Logger: log})
}

func (c *cli) tokenCreate(ctx context.Context, args []string) error {
	fs, _ := c.newEnvFlags("token create", false)
	sf := registerStoreFlags(fs)
	name := fs.String("name", "", "who or what uses the token, e.g. ci or grafana")
	perms := fs.String("permissions", "", "comma-separated permissions: "+strings.Join(httpapi.AllPermissions, ","))
	if _, err := c.parseEnv(fs, args); err != nil {
		return err
	}
	if err := required([2]string{"name", *name}, [2]string{"permissions", *perms}); err != nil {
		return err
	}
	list := splitList(*perms)
	if err := httpapi.CheckPermissions(list); err != nil {
		return usagef("--permissions: %v", err)
	}
	e, err := c.tokenEngine(ctx, sf)
	if err != nil {
		return err
	}
	defer e.Close()
	secret, err := httpapi.CreateToken(ctx, e, *name, list)
	if err != nil {
		return fmt.Errorf("create token: %w", err)
	}
	fmt.Fprintln(c.stdout, secret)
	return nil
}

func (c *cli) tokenList(ctx context.Context, args []string) error {
	fs, asJSON := c.newEnvFlags("token list", true)
	sf := registerStoreFlags(fs)
	if _, err := c.parseEnv(fs, args); err != nil {
		return err
	}
	e, err := c.tokenEngine(ctx, sf)
	if err != nil {
		return err
	}
	defer e.Close()
	toks, err := e.Store().ListAPITokens(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if toks == nil {
			toks = []engine.APIToken{}
		}
		return c.printJSON(toks)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPERMISSIONS\tCREATED\tLAST USED")
	for _, t := range toks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Permissions, ","),
			t.CreatedAt.UTC().Format(time.RFC3339), timeOrNever(t.LastUsedAt))
	}
	return tw.Flush()
}

func (c *cli) tokenRevoke(ctx context.Context, args []string) error {
	fs, _ := c.newEnvFlags("token revoke", false)
	sf := registerStoreFlags(fs)
	pos, err := c.parseEnv(fs, args, "ID")
	if err != nil {
		return err
	}
	e, err := c.tokenEngine(ctx, sf)
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Store().DeleteAPIToken(ctx, pos[0]); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	fmt.Fprintf(c.stdout, "revoked token %s\n", pos[0])
	return nil
}

// splitList splits a comma-separated list, dropping empty items and spaces.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func timeOrNever(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}
