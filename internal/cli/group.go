package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Group errors. Commands wrap them with the group's name.
var (
	ErrGroupNotFound = errors.New("cli: group does not exist")
	ErrGroupActive   = errors.New("cli: group has active members")
)

// Group types as ListGroups v5 (KIP-848) reports them. Brokers older than
// that send none; every group they have is classic.
const (
	groupTypeClassic  = "classic"
	groupTypeConsumer = "consumer"
)

// groupStates are the states --state accepts, by lower-case spelling, for
// both the classic protocol and KIP-848. Brokers compare the filter exactly,
// so the user's spelling is mapped to Kafka's before it is sent.
var groupStates = map[string]string{
	"empty":               "Empty",
	"stable":              "Stable",
	"preparingrebalance":  "PreparingRebalance",
	"completingrebalance": "CompletingRebalance",
	"dead":                "Dead",
	"assigning":           "Assigning",
	"reconciling":         "Reconciling",
}

type groupFlags struct {
	globals
	timeout time.Duration
}

func groupCommand() *cobra.Command {
	f := &groupFlags{}
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups"},
		Short:   "List, describe, delete consumer groups and reset their offsets",
	}
	f.register(cmd)
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", adminTimeoutDefault, "how long to wait for the broker")
	cmd.AddCommand(
		groupListCommand(f),
		groupDescribeCommand(f),
		groupDeleteCommand(f),
		groupResetCommand(f),
	)
	return cmd
}

// clients opens one kgo client and its admin wrapper: the group commands
// need a raw request (ListGroups v5 carries the group type, which kadm's
// ListedGroup drops) next to kadm's helpers. Closing the admin client closes
// both.
func (g *globals) clients(cmd *cobra.Command) (*kgo.Client, *kadm.Client, error) {
	cl, err := kgo.NewClient(g.clientOpts(cmd)...)
	if err != nil {
		return nil, nil, fmt.Errorf("cli: connecting: %w", err)
	}
	return cl, kadm.NewClient(cl), nil
}

// listedGroup is one group of a ListGroups answer.
type listedGroup struct {
	Group        string
	Type         string
	ProtocolType string
	State        string
	Coordinator  int32
}

// listGroups asks every broker for its groups. A broker that fails is an
// error: a partial list would silently hide groups.
func listGroups(ctx context.Context, cl *kgo.Client, states []string) (map[string]listedGroup, error) {
	req := kmsg.NewPtrListGroupsRequest()
	req.StatesFilter = states
	out := make(map[string]listedGroup)
	var errs []error
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", sh.Meta.NodeID, sh.Err))
			continue
		}
		resp := sh.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", sh.Meta.NodeID, err))
			continue
		}
		for _, g := range resp.Groups {
			typ := g.GroupType
			if typ == "" {
				typ = groupTypeClassic
			}
			out[g.Group] = listedGroup{
				Group: g.Group, Type: typ, ProtocolType: g.ProtocolType,
				State: g.GroupState, Coordinator: sh.Meta.NodeID,
			}
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("cli: list groups: %w", errors.Join(errs...))
	}
	return out, nil
}

// groupRow is one line of `group list`, also its JSON form. Members is -1
// when the group could not be described.
type groupRow struct {
	Group        string `json:"group"`
	Type         string `json:"type"`
	ProtocolType string `json:"protocol_type"`
	State        string `json:"state"`
	Members      int    `json:"members"`
	Coordinator  int32  `json:"coordinator"`
}

func groupListCommand(f *groupFlags) *cobra.Command {
	var (
		states []string
		format string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their type, state and member count",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			of, err := parseOutputFormat(format)
			if err != nil {
				return err
			}
			var filter []string
			for _, s := range states {
				for _, one := range splitList(s) {
					canon, ok := groupStates[strings.ToLower(one)]
					if !ok {
						return fmt.Errorf("%w: --state %q (want one of Empty, Stable, PreparingRebalance, CompletingRebalance, Dead, Assigning, Reconciling)", ErrUsage, one)
					}
					filter = append(filter, canon)
				}
			}
			cl, adm, err := f.clients(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := timeoutContext(cmd, f.timeout)
			defer cancel()
			listed, err := listGroups(ctx, cl, filter)
			if err != nil {
				return err
			}
			rows := make([]groupRow, 0, len(listed))
			for _, g := range listed {
				rows = append(rows, groupRow{
					Group: g.Group, Type: g.Type, ProtocolType: g.ProtocolType,
					State: g.State, Members: -1, Coordinator: g.Coordinator,
				})
			}
			sort.Slice(rows, func(i, j int) bool { return rows[i].Group < rows[j].Group })
			countMembers(ctx, adm, rows)
			if of == formatJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			t := newTable(cmd.OutOrStdout(), "GROUP", "TYPE", "PROTOCOL-TYPE", "STATE", "MEMBERS", "COORDINATOR")
			for _, r := range rows {
				members := "-"
				if r.Members >= 0 {
					members = fmt.Sprint(r.Members)
				}
				t.row(r.Group, r.Type, orDash(r.ProtocolType), orDash(r.State), members, r.Coordinator)
			}
			return t.flush()
		},
	}
	cmd.Flags().StringArrayVar(&states, "state", nil, "only groups in this state (repeatable or comma-separated; case-insensitive)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// countMembers fills in the member counts, which ListGroups does not carry.
// It is best effort: a group that cannot be described keeps -1 ("-").
func countMembers(ctx context.Context, adm *kadm.Client, rows []groupRow) {
	var classic, consumer []string
	for _, r := range rows {
		switch r.Type {
		case groupTypeClassic:
			classic = append(classic, r.Group)
		case groupTypeConsumer:
			consumer = append(consumer, r.Group)
		}
	}
	counts := make(map[string]int)
	if len(classic) > 0 {
		ds, _ := adm.DescribeGroups(ctx, classic...)
		for name, d := range ds {
			if d.Err == nil {
				counts[name] = len(d.Members)
			}
		}
	}
	if len(consumer) > 0 {
		ds, _ := adm.DescribeConsumerGroups(ctx, consumer...)
		for name, d := range ds {
			if d.Err == nil {
				counts[name] = len(d.Members)
			}
		}
	}
	for i := range rows {
		if n, ok := counts[rows[i].Group]; ok {
			rows[i].Members = n
		}
	}
}

func groupDeleteCommand(f *groupFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete consumer groups and their committed offsets (the groups must have no members)",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			adm, err := f.admin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := timeoutContext(cmd, f.timeout)
			defer cancel()
			// Shard errors (a coordinator that could not be reached) leave
			// their groups out of the map; they are reported per group
			// below rather than hiding the answers we do have.
			resps, err := adm.DeleteGroups(ctx, args...)
			t := newTable(cmd.OutOrStdout(), "GROUP", "STATUS")
			failed := 0
			for _, g := range args {
				r, ok := resps[g]
				s := errText(r.Err, r.ErrMessage)
				switch {
				case !ok && err != nil:
					s = err.Error()
				case !ok:
					s = "no response"
				case errors.Is(r.Err, kerr.GroupIDNotFound):
					s += " (no such group)"
				case errors.Is(r.Err, kerr.NonEmptyGroup):
					s += " (the group has members; stop its consumers first)"
				}
				if !ok || r.Err != nil {
					failed++
				}
				t.row(g, s)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%w: %d of %d groups not deleted", ErrFailed, failed, len(args))
			}
			return nil
		},
	}
	return cmd
}
