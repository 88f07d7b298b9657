package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// adminTimeoutDefault bounds each topic command; a broker that does not
// answer should produce an error, not a hung terminal.
const adminTimeoutDefault = 30 * time.Second

type topicFlags struct {
	globals
	timeout time.Duration
}

func topicCommand() *cobra.Command {
	f := &topicFlags{}
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	f.register(cmd)
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", adminTimeoutDefault, "how long to wait for the broker")
	cmd.AddCommand(
		topicCreateCommand(f),
		topicListCommand(f),
		topicDescribeCommand(f),
		topicAlterCommand(f),
		topicDeleteCommand(f),
	)
	return cmd
}

// topicID renders a topic ID the way Kafka's tools do (URL-safe base64, no
// padding), or "-" when the broker sent none.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func topicCreateCommand(f *topicFlags) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
		dryRun     bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create topics",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			kvs, err := parseKV(configs)
			if err != nil {
				return err
			}
			cfg := make(map[string]*string, len(kvs))
			for _, kv := range kvs {
				cfg[kv[0]] = kadm.StringPtr(kv[1])
			}
			adm, err := f.admin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := timeoutContext(cmd, f.timeout)
			defer cancel()
			create := adm.CreateTopics
			if dryRun {
				create = adm.ValidateCreateTopics
			}
			resps, err := create(ctx, partitions, replicas, cfg, args...)
			if err != nil {
				return fmt.Errorf("cli: create topics: %w", err)
			}
			t := newTable(cmd.OutOrStdout(), "TOPIC", "ID", "PARTITIONS", "REPLICAS", "STATUS")
			failed := 0
			for _, name := range args {
				r, ok := resps[name]
				if !ok {
					failed++
					t.row(name, "-", "-", "-", "no response")
					continue
				}
				if r.Err != nil {
					failed++
				}
				t.row(name, topicID(r.ID), r.NumPartitions, r.ReplicationFactor, errText(r.Err, r.ErrMessage))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%w: %d of %d topics not created", ErrFailed, failed, len(args))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.Int32VarP(&partitions, "partitions", "p", -1, "partitions per topic (-1: the broker's num.partitions)")
	fl.Int16VarP(&replicas, "replicas", "r", -1, "replication factor (-1: the broker's default)")
	fl.StringArrayVarP(&configs, "config", "c", nil, "topic config key=value (repeatable)")
	fl.BoolVar(&dryRun, "dry-run", false, "validate only; create nothing")
	return cmd
}

// topicRow is one line of `topic list`, also its JSON form.
type topicRow struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Partitions int    `json:"partitions"`
	Replicas   int    `json:"replicas"`
	Internal   bool   `json:"internal,omitempty"`
	Error      string `json:"error,omitempty"`
}

func topicListCommand(f *topicFlags) *cobra.Command {
	var (
		internal bool
		format   string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			of, err := parseOutputFormat(format)
			if err != nil {
				return err
			}
			adm, err := f.admin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := timeoutContext(cmd, f.timeout)
			defer cancel()
			details, err := adm.ListTopicsWithInternal(ctx)
			if err != nil {
				return fmt.Errorf("cli: list topics: %w", err)
			}
			if !internal {
				details.FilterInternal()
			}
			rows := make([]topicRow, 0, len(details))
			for _, name := range details.Names() {
				d := details[name]
				r := topicRow{Name: name, ID: topicID(d.ID), Partitions: len(d.Partitions), Internal: d.IsInternal}
				if p, ok := d.Partitions[0]; ok {
					r.Replicas = len(p.Replicas)
				}
				if d.Err != nil {
					r.Error = d.Err.Error()
				}
				rows = append(rows, r)
			}
			if of == formatJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "PARTITIONS", "REPLICAS", "ID")
			for _, r := range rows {
				name := r.Name
				if r.Internal {
					name += " (internal)"
				}
				t.row(name, r.Partitions, r.Replicas, r.ID)
			}
			return t.flush()
		},
	}
	cmd.Flags().BoolVarP(&internal, "internal", "i", false, "include internal topics")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// topicDescription is the JSON form of `topic describe`.
type topicDescription struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Internal   bool              `json:"internal"`
	Partitions []partitionDetail `json:"partitions"`
	Configs    []configDetail    `json:"configs"`
	Error      string            `json:"error,omitempty"`
}

type partitionDetail struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	LeaderEpoch   int32   `json:"leader_epoch"`
	Replicas      []int32 `json:"replicas"`
	ISR           []int32 `json:"isr"`
	LogStart      int64   `json:"log_start_offset"`
	HighWatermark int64   `json:"high_watermark"`
	Error         string  `json:"error,omitempty"`
}

type configDetail struct {
	Key       string  `json:"key"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive,omitempty"`
}

func topicDescribeCommand(f *topicFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "describe NAME...",
		Short: "Show a topic's partitions (leader, log start, high watermark) and configs with their sources",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			of, err := parseOutputFormat(format)
			if err != nil {
				return err
			}
			adm, err := f.admin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := timeoutContext(cmd, f.timeout)
			defer cancel()
			descs, err := describeTopics(ctx, adm, args)
			if err != nil {
				return err
			}
			failed := 0
			for _, d := range descs {
				if d.Error != "" {
					failed++
				}
			}
			if of == formatJSON {
				err = writeJSON(cmd.OutOrStdout(), descs)
			} else {
				err = printDescriptions(cmd, descs)
			}
			if err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%w: %d of %d topics could not be described", ErrFailed, failed, len(args))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

func describeTopics(ctx context.Context, adm *kadm.Client, names []string) ([]topicDescription, error) {
	details, err := adm.ListTopicsWithInternal(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("cli: metadata: %w", err)
	}
	var existing []string
	for _, n := range names {
		if d, ok := details[n]; ok && d.Err == nil {
			existing = append(existing, n)
		}
	}
	var (
		starts, ends kadm.ListedOffsets
		configs      kadm.ResourceConfigs
	)
	if len(existing) > 0 {
		// Offsets and configs are extras: a failure there is shown per
		// partition or topic instead of hiding the metadata we have.
		starts, err = adm.ListStartOffsets(ctx, existing...)
		if err != nil {
			return nil, fmt.Errorf("cli: list start offsets: %w", err)
		}
		ends, err = adm.ListEndOffsets(ctx, existing...)
		if err != nil {
			return nil, fmt.Errorf("cli: list end offsets: %w", err)
		}
		configs, err = adm.DescribeTopicConfigs(ctx, existing...)
		if err != nil {
			return nil, fmt.Errorf("cli: describe configs: %w", err)
		}
	}
	out := make([]topicDescription, 0, len(names))
	for _, n := range names {
		d, ok := details[n]
		desc := topicDescription{Name: n, ID: "-", Partitions: []partitionDetail{}, Configs: []configDetail{}}
		switch {
		case !ok:
			desc.Error = "no metadata returned"
		case d.Err != nil:
			desc.Error = d.Err.Error()
		}
		if desc.Error != "" {
			out = append(out, desc)
			continue
		}
		desc.ID = topicID(d.ID)
		desc.Internal = d.IsInternal
		for _, p := range d.Partitions.Sorted() {
			pd := partitionDetail{
				Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), LogStart: -1, HighWatermark: -1,
			}
			if p.Err != nil {
				pd.Error = p.Err.Error()
			}
			if o, ok := starts.Lookup(n, p.Partition); ok {
				if o.Err != nil {
					pd.Error = "log start: " + o.Err.Error()
				} else {
					pd.LogStart = o.Offset
				}
			}
			if o, ok := ends.Lookup(n, p.Partition); ok {
				if o.Err != nil {
					pd.Error = "high watermark: " + o.Err.Error()
				} else {
					pd.HighWatermark = o.Offset
				}
			}
			desc.Partitions = append(desc.Partitions, pd)
		}
		if rc, err := configs.On(n, nil); err == nil {
			if rc.Err != nil {
				desc.Error = "configs: " + errText(rc.Err, rc.ErrMessage)
			}
			for _, c := range rc.Configs {
				desc.Configs = append(desc.Configs, configDetail{
					Key: c.Key, Value: c.Value, Source: c.Source.String(), Sensitive: c.Sensitive,
				})
			}
			sort.Slice(desc.Configs, func(i, j int) bool { return desc.Configs[i].Key < desc.Configs[j].Key })
		}
		out = append(out, desc)
	}
	return out, nil
}

func printDescriptions(cmd *cobra.Command, descs []topicDescription) error {
	w := cmd.OutOrStdout()
	for i, d := range descs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		replicas := 0
		if len(d.Partitions) > 0 {
			replicas = len(d.Partitions[0].Replicas)
		}
		t := newTable(w)
		t.row("NAME", d.Name)
		t.row("ID", d.ID)
		t.row("INTERNAL", d.Internal)
		t.row("PARTITIONS", len(d.Partitions))
		t.row("REPLICAS", replicas)
		if d.Error != "" {
			t.row("ERROR", d.Error)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if len(d.Configs) > 0 {
			fmt.Fprintln(w, "\nCONFIGS")
			t = newTable(w, "KEY", "VALUE", "SOURCE")
			for _, c := range d.Configs {
				v := "-"
				switch {
				case c.Sensitive:
					v = "(sensitive)"
				case c.Value != nil:
					v = *c.Value
				}
				t.row(c.Key, v, c.Source)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if len(d.Partitions) > 0 {
			fmt.Fprintln(w, "\nPARTITIONS")
			t = newTable(w, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK", "ERROR")
			for _, p := range d.Partitions {
				t.row(p.Partition, p.Leader, p.LeaderEpoch, joinInt32s(p.Replicas), joinInt32s(p.ISR),
					p.LogStart, p.HighWatermark, orDash(p.Error))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func topicAlterCommand(f *topicFlags) *cobra.Command {
	var (
		set        []string
		del        []string
		partitions int
		dryRun     bool
	)
	cmd := &cobra.Command{
		Use:   "alter NAME...",
		Short: "Change topic configs incrementally (-c, --delete-config) or grow partitions (-p)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			kvs, err := parseKV(set)
			if err != nil {
				return err
			}
			if len(kvs) == 0 && len(del) == 0 && partitions <= 0 {
				return fmt.Errorf("%w: nothing to change: give -c key=value, --delete-config key or -p N", ErrUsage)
			}
			var alters []kadm.AlterConfig
			for _, kv := range kvs {
				alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv[0], Value: kadm.StringPtr(kv[1])})
			}
			for _, k := range del {
				alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			adm, err := f.admin(cmd)
			if err != nil {
				return err
			}
			defer adm.Close()
			ctx, cancel := timeoutContext(cmd, f.timeout)
			defer cancel()

			status := make(map[string]string, len(args))
			failed := map[string]bool{}
			if len(alters) > 0 {
				alter := adm.AlterTopicConfigs
				if dryRun {
					alter = adm.ValidateAlterTopicConfigs
				}
				resps, err := alter(ctx, alters, args...)
				if err != nil {
					return fmt.Errorf("cli: alter configs: %w", err)
				}
				for _, r := range resps {
					status[r.Name] = "configs " + errText(r.Err, r.ErrMessage)
					if r.Err != nil {
						failed[r.Name] = true
					}
				}
			}
			if partitions > 0 {
				update := adm.UpdatePartitions
				if dryRun {
					update = adm.ValidateUpdatePartitions
				}
				resps, err := update(ctx, partitions, args...)
				if err != nil {
					return fmt.Errorf("cli: create partitions: %w", err)
				}
				for _, r := range resps {
					s := "partitions " + errText(r.Err, r.ErrMessage)
					if prev := status[r.Topic]; prev != "" {
						s = prev + "; " + s
					}
					status[r.Topic] = s
					if r.Err != nil {
						failed[r.Topic] = true
					}
				}
			}
			t := newTable(cmd.OutOrStdout(), "TOPIC", "STATUS")
			for _, n := range args {
				s, ok := status[n]
				if !ok {
					s = "no response"
					failed[n] = true
				}
				t.row(n, s)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(failed) > 0 {
				return fmt.Errorf("%w: %d of %d topics not altered", ErrFailed, len(failed), len(args))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&set, "config", "c", nil, "set topic config key=value (repeatable)")
	fl.StringArrayVar(&del, "delete-config", nil, "remove a topic config override, restoring the default (repeatable)")
	fl.IntVarP(&partitions, "partitions", "p", 0, "grow each topic to this many partitions")
	fl.BoolVar(&dryRun, "dry-run", false, "validate only; change nothing")
	return cmd
}

func topicDeleteCommand(f *topicFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and their data",
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
			resps, err := adm.DeleteTopics(ctx, args...)
			if err != nil {
				return fmt.Errorf("cli: delete topics: %w", err)
			}
			t := newTable(cmd.OutOrStdout(), "TOPIC", "STATUS")
			failed := 0
			for _, n := range args {
				r, ok := resps[n]
				s := errText(r.Err, r.ErrMessage)
				if !ok {
					s = "no response"
				}
				if !ok || r.Err != nil {
					failed++
				}
				t.row(n, s)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%w: %d of %d topics not deleted", ErrFailed, failed, len(args))
			}
			return nil
		},
	}
	return cmd
}

func nonNil(xs []int32) []int32 {
	if xs == nil {
		return []int32{}
	}
	return xs
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
