package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// resetMode is the --to-* or --shift-by flag of `group reset-offsets`.
type resetMode int

const (
	resetEarliest resetMode = iota + 1
	resetLatest
	resetDatetime
	resetOffset
	resetShift
)

// errNoCommit is why --shift-by cannot move a partition: there is nothing
// to shift from. Kafka's tool refuses the same way.
var errNoCommit = errors.New("nothing committed to shift from")

// resetSpec is a parsed reset mode with its argument: the offset for
// --to-offset, the delta for --shift-by.
type resetSpec struct {
	mode resetMode
	n    int64
}

// target is the new offset for one partition, given the group's committed
// offset (-1 for none), the log's start and end, and for --to-datetime the
// offset ListOffsets found (-1 when no record is that new, which means the
// end, as in Kafka). Like Kafka's tool, every mode lands in [start, end]:
// committing outside it would only make the consumer reset by its own
// auto.offset.reset, which is not what was asked.
func (s resetSpec) target(committed, start, end, atTime int64) (int64, error) {
	var at int64
	switch s.mode {
	case resetEarliest:
		at = start
	case resetLatest:
		at = end
	case resetDatetime:
		at = atTime
		if at < 0 {
			at = end
		}
	case resetOffset:
		at = s.n
	case resetShift:
		if committed < 0 {
			return 0, errNoCommit
		}
		at = committed + s.n
		switch { // saturate instead of wrapping around
		case s.n > 0 && at < committed:
			at = math.MaxInt64
		case s.n < 0 && at > committed:
			at = math.MinInt64
		}
	default:
		return 0, fmt.Errorf("%w: no reset mode", ErrUsage)
	}
	return min(max(at, start), end), nil
}

// parseDatetime reads --to-datetime: RFC 3339, or Kafka's own
// yyyy-MM-ddTHH:mm:ss[.SSS] without a zone, taken as local time as Kafka's
// tool does.
func parseDatetime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.000", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: --to-datetime %q (want RFC 3339, e.g. 2024-05-01T12:00:00Z)", ErrUsage, s)
}

// topicSpec is one --topic: a topic and the partitions to reset, all when
// parts is empty.
type topicSpec struct {
	topic string
	parts []int32
}

// parseTopicSpec reads "T" or "T:0,1,2". Kafka topic names cannot contain
// ':', so the last one separates the partitions.
func parseTopicSpec(s string) (topicSpec, error) {
	name, list, hasParts := strings.Cut(s, ":")
	if name == "" {
		return topicSpec{}, fmt.Errorf("%w: --topic %q has no topic name", ErrUsage, s)
	}
	ts := topicSpec{topic: name}
	if !hasParts {
		return ts, nil
	}
	for _, p := range strings.Split(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		if err != nil || n < 0 {
			return topicSpec{}, fmt.Errorf("%w: --topic %q: partition %q is not a number >= 0", ErrUsage, s, p)
		}
		ts.parts = append(ts.parts, int32(n))
	}
	return ts, nil
}

// resetRow is one partition of the plan, also its JSON form. Current is -1
// when the group has committed nothing there.
type resetRow struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Current   int64  `json:"current_offset"`
	New       int64  `json:"new_offset"`
	LogStart  int64  `json:"log_start_offset"`
	LogEnd    int64  `json:"log_end_offset"`
	Status    string `json:"status,omitempty"`
}

type resetFlags struct {
	topics     []string
	allTopics  bool
	toEarliest bool
	toLatest   bool
	toDatetime string
	toOffset   int64
	shiftBy    int64
	execute    bool
	dryRun     bool
	format     string
}

func groupResetCommand(f *groupFlags) *cobra.Command {
	r := &resetFlags{}
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP",
		Short: "Move a group's committed offsets (dry run unless --execute; the group must have no members)",
		Long: `Move a group's committed offsets, as kafka-consumer-groups.sh --reset-offsets does.

Pick the partitions with --topic T (all its partitions) or --topic T:0,2, or
--all-topics for every partition the group has committed, and one mode:
--to-earliest, --to-latest, --to-datetime, --to-offset N or --shift-by N.
New offsets are kept within [log start, log end]. Without --execute the plan
is printed and nothing is committed. The group must be Empty (or not exist
yet): a running consumer would overwrite the reset with its next commit.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			return runReset(cmd, f, r, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&r.topics, "topic", "t", nil, "topic to reset, T or T:p1,p2 (repeatable)")
	fl.BoolVar(&r.allTopics, "all-topics", false, "reset every partition the group has committed")
	fl.BoolVar(&r.toEarliest, "to-earliest", false, "reset to the log start")
	fl.BoolVar(&r.toLatest, "to-latest", false, "reset to the log end")
	fl.StringVar(&r.toDatetime, "to-datetime", "", "reset to the first record at or after this time (RFC 3339)")
	fl.Int64Var(&r.toOffset, "to-offset", 0, "reset to this offset")
	fl.Int64Var(&r.shiftBy, "shift-by", 0, "move the committed offset by N (negative: back)")
	fl.BoolVar(&r.execute, "execute", false, "commit the new offsets (default: print the plan only)")
	fl.BoolVar(&r.dryRun, "dry-run", false, "print the plan only (the default)")
	fl.StringVar(&r.format, "format", "text", "output format: text or json")
	return cmd
}

// parse checks every flag and reports all problems at once.
func (r *resetFlags) parse(cmd *cobra.Command) (resetSpec, []topicSpec, int64, outputFormat, error) {
	var (
		problems []string
		spec     resetSpec
		atMs     int64
		specs    []topicSpec
	)
	fl := cmd.Flags()
	var modes []string
	if r.toEarliest {
		modes, spec = append(modes, "--to-earliest"), resetSpec{mode: resetEarliest}
	}
	if r.toLatest {
		modes, spec = append(modes, "--to-latest"), resetSpec{mode: resetLatest}
	}
	if fl.Changed("to-datetime") {
		modes, spec = append(modes, "--to-datetime"), resetSpec{mode: resetDatetime}
		if t, err := parseDatetime(r.toDatetime); err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
		} else {
			atMs = t.UnixMilli()
		}
	}
	if fl.Changed("to-offset") {
		modes, spec = append(modes, "--to-offset"), resetSpec{mode: resetOffset, n: r.toOffset}
	}
	if fl.Changed("shift-by") {
		modes, spec = append(modes, "--shift-by"), resetSpec{mode: resetShift, n: r.shiftBy}
	}
	switch len(modes) {
	case 0:
		problems = append(problems, "give one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by")
	case 1:
	default:
		problems = append(problems, "give only one of "+strings.Join(modes, ", "))
	}
	switch {
	case len(r.topics) == 0 && !r.allTopics:
		problems = append(problems, "give --topic T[:p1,p2] or --all-topics")
	case len(r.topics) > 0 && r.allTopics:
		problems = append(problems, "give --topic or --all-topics, not both")
	}
	for _, s := range r.topics {
		ts, err := parseTopicSpec(s)
		if err != nil {
			problems = append(problems, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
			continue
		}
		specs = append(specs, ts)
	}
	if r.execute && r.dryRun {
		problems = append(problems, "give --execute or --dry-run, not both")
	}
	of, err := parseOutputFormat(r.format)
	if err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), ErrUsage.Error()+": "))
	}
	if len(problems) > 0 {
		return resetSpec{}, nil, 0, "", fmt.Errorf("%w: %s", ErrUsage, strings.Join(problems, "; "))
	}
	return spec, specs, atMs, of, nil
}

func runReset(cmd *cobra.Command, f *groupFlags, r *resetFlags, group string) error {
	spec, specs, atMs, of, err := r.parse(cmd)
	if err != nil {
		return err
	}
	cl, adm, err := f.clients(cmd)
	if err != nil {
		return err
	}
	defer adm.Close()
	ctx, cancel := timeoutContext(cmd, f.timeout)
	defer cancel()

	descs, err := describeGroups(ctx, cl, adm, []string{group})
	if err != nil {
		return err
	}
	d := descs[0]
	switch {
	case d.notFound:
		if r.execute {
			stderrf(cmd, "group %q does not exist; committing creates it with these offsets\n", group)
		}
	case d.Error != "":
		return fmt.Errorf("%w: group %q: %s", ErrFailed, group, d.Error)
	case len(d.Members) > 0 || (d.State != "Empty" && d.State != "Dead"):
		return fmt.Errorf("%w: group %q is %s with %d member(s); offsets can only be reset while it is Empty: stop its consumers first",
			ErrGroupActive, group, d.State, len(d.Members))
	}

	var committed kadm.OffsetResponses
	if !d.notFound {
		if committed, err = adm.FetchOffsets(ctx, group); err != nil {
			return fmt.Errorf("cli: fetch offsets of %q: %w", group, err)
		}
	}
	targets, err := resetTargets(ctx, adm, specs, committed)
	if err != nil {
		return err
	}
	rows, err := planReset(ctx, adm, group, spec, atMs, targets, committed)
	if err != nil {
		return err
	}

	failed := 0
	if r.execute && len(rows) > 0 {
		var os kadm.Offsets
		for _, row := range rows {
			os.Add(kadm.Offset{Topic: row.Topic, Partition: row.Partition, At: row.New, LeaderEpoch: -1})
		}
		resps, err := adm.CommitOffsets(ctx, group, os)
		if err != nil {
			return fmt.Errorf("cli: commit offsets of %q: %w", group, err)
		}
		for i, row := range rows {
			c, ok := resps.Lookup(row.Topic, row.Partition)
			switch {
			case !ok:
				rows[i].Status = "no response"
				failed++
			case c.Err != nil:
				rows[i].Status = c.Err.Error()
				failed++
			default:
				rows[i].Status = "OK"
			}
		}
	}
	if of == formatJSON {
		err = writeJSON(cmd.OutOrStdout(), rows)
	} else {
		header := []string{"GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET", "LOG-START", "LOG-END"}
		if r.execute {
			header = append(header, "STATUS")
		}
		t := newTable(cmd.OutOrStdout(), header...)
		for _, row := range rows {
			cols := []any{row.Group, row.Topic, row.Partition, orDashN(row.Current), row.New, row.LogStart, row.LogEnd}
			if r.execute {
				cols = append(cols, row.Status)
			}
			t.row(cols...)
		}
		err = t.flush()
	}
	if err != nil {
		return err
	}
	switch {
	case failed > 0:
		return fmt.Errorf("%w: %d of %d offsets not committed", ErrFailed, failed, len(rows))
	case len(rows) == 0:
		stderrf(cmd, "nothing to reset: group %q has no committed offsets\n", group)
	case !r.execute:
		stderrf(cmd, "dry run: nothing committed; add --execute to commit these offsets\n")
	}
	return nil
}

// resetTargets resolves the partitions to reset: every partition of each
// --topic (or the ones listed), or with --all-topics (specs nil) every
// partition the group has committed.
func resetTargets(ctx context.Context, adm *kadm.Client, specs []topicSpec, committed kadm.OffsetResponses) (kadm.TopicsSet, error) {
	set := make(kadm.TopicsSet)
	if specs == nil {
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil {
				set.Add(o.Topic, o.Partition)
			}
		})
		return set, nil
	}
	names := make([]string, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.topic)
	}
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("cli: metadata: %w", err)
	}
	var problems []string
	for _, s := range specs {
		d, ok := details[s.topic]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("topic %q: no metadata returned", s.topic))
			continue
		case d.Err != nil:
			problems = append(problems, fmt.Sprintf("topic %q: %v", s.topic, d.Err))
			continue
		}
		if len(s.parts) == 0 {
			set.Add(s.topic, d.Partitions.Numbers()...)
			continue
		}
		for _, p := range s.parts {
			if _, ok := d.Partitions[p]; !ok {
				problems = append(problems, fmt.Sprintf("topic %q has no partition %d (it has %d)", s.topic, p, len(d.Partitions)))
				continue
			}
			set.Add(s.topic, p)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrUsage, strings.Join(problems, "; "))
	}
	return set, nil
}

// planReset lists each target partition's bounds and computes its new
// offset. Nothing is committed if any partition cannot be planned.
func planReset(ctx context.Context, adm *kadm.Client, group string, spec resetSpec, atMs int64,
	targets kadm.TopicsSet, committed kadm.OffsetResponses) ([]resetRow, error) {
	topics := targets.Topics()
	if len(topics) == 0 {
		return nil, nil
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err := shardErr(err); err != nil {
		return nil, fmt.Errorf("cli: list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err := shardErr(err); err != nil {
		return nil, fmt.Errorf("cli: list end offsets: %w", err)
	}
	var atTime kadm.ListedOffsets
	if spec.mode == resetDatetime {
		atTime, err = adm.ListOffsetsAfterMilli(ctx, atMs, topics...)
		if err := shardErr(err); err != nil {
			return nil, fmt.Errorf("cli: list offsets by time: %w", err)
		}
	}
	var (
		rows     []resetRow
		problems []string
	)
	for _, tp := range targets.Sorted() {
		sort.Slice(tp.Partitions, func(i, j int) bool { return tp.Partitions[i] < tp.Partitions[j] })
		for _, p := range tp.Partitions {
			where := fmt.Sprintf("%s/%d", tp.Topic, p)
			s, sok := starts.Lookup(tp.Topic, p)
			e, eok := ends.Lookup(tp.Topic, p)
			switch {
			case !sok || !eok:
				problems = append(problems, where+": offsets not listed")
				continue
			case s.Err != nil:
				problems = append(problems, where+": log start: "+s.Err.Error())
				continue
			case e.Err != nil:
				problems = append(problems, where+": log end: "+e.Err.Error())
				continue
			}
			at := int64(-1)
			if spec.mode == resetDatetime {
				o, ok := atTime.Lookup(tp.Topic, p)
				switch {
				case !ok:
					problems = append(problems, where+": offset by time not listed")
					continue
				case o.Err != nil:
					problems = append(problems, where+": offset by time: "+o.Err.Error())
					continue
				}
				at = o.Offset
			}
			cur := int64(-1)
			if c, ok := committed.Lookup(tp.Topic, p); ok && c.Err == nil && c.At >= 0 {
				cur = c.At
			}
			n, err := spec.target(cur, s.Offset, e.Offset, at)
			if err != nil {
				problems = append(problems, where+": "+err.Error())
				continue
			}
			rows = append(rows, resetRow{
				Group: group, Topic: tp.Topic, Partition: p, Current: cur, New: n,
				LogStart: s.Offset, LogEnd: e.Offset,
			})
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: cannot plan the reset, nothing committed: %s", ErrFailed, strings.Join(problems, "; "))
	}
	return rows, nil
}
