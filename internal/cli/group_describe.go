package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupDescription is the JSON form of `group describe`. Offsets and lags
// that are not known (nothing committed, end not listed) are -1.
type groupDescription struct {
	Group        string           `json:"group"`
	Type         string           `json:"type"`
	ProtocolType string           `json:"protocol_type"`
	Protocol     string           `json:"protocol"`
	State        string           `json:"state"`
	Coordinator  *groupBroker     `json:"coordinator,omitempty"`
	Members      []groupMember    `json:"members"`
	Partitions   []groupPartition `json:"partitions"`
	TopicLags    []groupTopicLag  `json:"topic_lags"`
	TotalLag     int64            `json:"total_lag"`
	Error        string           `json:"error,omitempty"`

	notFound bool
}

type groupBroker struct {
	NodeID int32  `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
}

func (b *groupBroker) String() string {
	if b == nil {
		return "-"
	}
	return fmt.Sprintf("%d (%s)", b.NodeID, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
}

type groupMember struct {
	MemberID   string            `json:"member_id"`
	InstanceID string            `json:"instance_id,omitempty"`
	ClientID   string            `json:"client_id"`
	Host       string            `json:"host"`
	Assigned   []topicPartitions `json:"assigned"`
}

type topicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// groupPartition is one partition the group is assigned or has committed.
type groupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed_offset"`
	LogStart  int64  `json:"log_start_offset"`
	LogEnd    int64  `json:"log_end_offset"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Host      string `json:"host,omitempty"`
	Error     string `json:"error,omitempty"`
}

type groupTopicLag struct {
	Topic string `json:"topic"`
	Lag   int64  `json:"lag"`
}

func groupDescribeCommand(f *groupFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's state, members and per-partition committed offset, log end and lag",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SilenceUsage = true
			of, err := parseOutputFormat(format)
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
			descs, err := describeGroups(ctx, cl, adm, args)
			if err != nil {
				return err
			}
			if err := addGroupOffsets(ctx, adm, descs); err != nil {
				return err
			}
			if of == formatJSON {
				err = writeJSON(cmd.OutOrStdout(), descs)
			} else {
				err = printGroupDescriptions(cmd, descs)
			}
			if err != nil {
				return err
			}
			return describeFailures(descs)
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}

// describeFailures turns per-group problems into the command's error:
// ErrGroupNotFound when a group is missing (the common typo), else ErrFailed.
func describeFailures(descs []*groupDescription) error {
	var missing []string
	failed := 0
	for _, d := range descs {
		switch {
		case d.notFound:
			missing = append(missing, d.Group)
		case d.Error != "":
			failed++
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrGroupNotFound, strings.Join(missing, ", "))
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d groups could not be described", ErrFailed, failed, len(descs))
	}
	return nil
}

// describeGroups fills in state, coordinator and members. KIP-848 groups
// are described with ConsumerGroupDescribe, the rest with the classic
// DescribeGroups; ListGroups says which is which.
func describeGroups(ctx context.Context, cl *kgo.Client, adm *kadm.Client, names []string) ([]*groupDescription, error) {
	listed, err := listGroups(ctx, cl, nil)
	if err != nil {
		return nil, err
	}
	out := make([]*groupDescription, 0, len(names))
	byName := make(map[string]*groupDescription, len(names))
	var classic, consumer []string
	for _, n := range names {
		if _, dup := byName[n]; dup {
			continue
		}
		d := &groupDescription{Group: n, Type: groupTypeClassic, Members: []groupMember{}, Partitions: []groupPartition{}, TopicLags: []groupTopicLag{}}
		out = append(out, d)
		byName[n] = d
		if l, ok := listed[n]; ok && l.Type != groupTypeClassic {
			d.Type = l.Type
			if l.Type != groupTypeConsumer {
				d.State = l.State
				d.Error = fmt.Sprintf("%s groups cannot be described by this command", l.Type)
				continue
			}
			consumer = append(consumer, n)
			continue
		}
		// A group that ListGroups did not return is asked about anyway:
		// the coordinator's answer (Dead or GROUP_ID_NOT_FOUND) is what
		// says it does not exist.
		classic = append(classic, n)
	}
	if len(classic) > 0 {
		ds, err := adm.DescribeGroups(ctx, classic...)
		if err := shardErr(err); err != nil {
			return nil, fmt.Errorf("cli: describe groups: %w", err)
		}
		for _, n := range classic {
			d := byName[n]
			g, ok := ds[n]
			if !ok {
				d.Error = missingAnswer(err)
				continue
			}
			d.State, d.ProtocolType, d.Protocol = g.State, g.ProtocolType, g.Protocol
			d.Coordinator = brokerOf(g.Coordinator)
			// Kafka answers Dead for a group it does not know, and from
			// DescribeGroups v6 also GROUP_ID_NOT_FOUND.
			if errors.Is(g.Err, kerr.GroupIDNotFound) || (g.Err == nil && g.State == "Dead" && len(g.Members) == 0) {
				d.notFound, d.Error = true, "group does not exist"
				continue
			}
			if g.Err != nil {
				d.Error = errText(g.Err, g.ErrMessage)
				continue
			}
			for _, m := range g.Members {
				gm := groupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: []topicPartitions{}}
				if m.InstanceID != nil {
					gm.InstanceID = *m.InstanceID
				}
				if a, ok := m.Assigned.AsConsumer(); ok {
					for _, t := range a.Topics {
						ps := append([]int32(nil), t.Partitions...)
						sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
						gm.Assigned = append(gm.Assigned, topicPartitions{Topic: t.Topic, Partitions: ps})
					}
				}
				sort.Slice(gm.Assigned, func(i, j int) bool { return gm.Assigned[i].Topic < gm.Assigned[j].Topic })
				d.Members = append(d.Members, gm)
			}
		}
	}
	if len(consumer) > 0 {
		if err := describeNextGen(ctx, cl, adm, consumer, byName); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// describeNextGen describes KIP-848 groups with ConsumerGroupDescribe. It
// sends the request itself rather than through kadm, which keeps only topic
// names: a coordinator may identify assigned topics by ID alone, and those
// are resolved through metadata here.
func describeNextGen(ctx context.Context, cl *kgo.Client, adm *kadm.Client, names []string, byName map[string]*groupDescription) error {
	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = names
	type pending struct {
		d    *groupDescription
		m    int
		id   kadm.TopicID
		part []int32
	}
	var unnamed []pending
	answered := make(map[string]bool)
	var shardErrs []string
	for _, sh := range cl.RequestSharded(ctx, req) {
		if sh.Err != nil {
			shardErrs = append(shardErrs, fmt.Sprintf("broker %d: %v", sh.Meta.NodeID, sh.Err))
			continue
		}
		resp := sh.Resp.(*kmsg.ConsumerGroupDescribeResponse)
		for _, g := range resp.Groups {
			d, ok := byName[g.Group]
			if !ok {
				continue
			}
			answered[g.Group] = true
			d.State, d.ProtocolType, d.Protocol = g.State, "consumer", g.AssignorName
			d.Coordinator = brokerOf(sh.Meta)
			if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
				if errors.Is(err, kerr.GroupIDNotFound) {
					d.notFound, d.Error = true, "group does not exist"
				} else {
					d.Error = errText(err, derefString(g.ErrorMessage))
				}
				continue
			}
			for _, m := range g.Members {
				gm := groupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: []topicPartitions{}}
				if m.InstanceID != nil {
					gm.InstanceID = *m.InstanceID
				}
				d.Members = append(d.Members, gm)
				for _, tp := range m.Assignment.TopicPartitions {
					ps := append([]int32(nil), tp.Partitions...)
					sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
					if tp.Topic == "" {
						unnamed = append(unnamed, pending{d, len(d.Members) - 1, kadm.TopicID(tp.TopicID), ps})
						continue
					}
					gm.Assigned = append(gm.Assigned, topicPartitions{Topic: tp.Topic, Partitions: ps})
				}
				d.Members[len(d.Members)-1].Assigned = gm.Assigned
			}
		}
	}
	for _, n := range names {
		if !answered[n] {
			byName[n].Error = "no response"
			if len(shardErrs) > 0 {
				byName[n].Error = strings.Join(shardErrs, "; ")
			}
		}
	}
	if len(unnamed) > 0 {
		topics, err := adm.ListTopics(ctx)
		if err != nil {
			return fmt.Errorf("cli: metadata: %w", err)
		}
		byID := make(map[kadm.TopicID]string, len(topics))
		for name, td := range topics {
			byID[td.ID] = name
		}
		for _, u := range unnamed {
			name, ok := byID[u.id]
			if !ok {
				// Deleted since it was assigned: show the ID so the row
				// still says which partitions the member holds.
				name = "topic-id:" + topicID(u.id)
			}
			m := &u.d.Members[u.m]
			m.Assigned = append(m.Assigned, topicPartitions{Topic: name, Partitions: u.part})
		}
	}
	for _, d := range byName {
		for i := range d.Members {
			as := d.Members[i].Assigned
			sort.Slice(as, func(a, b int) bool { return as[a].Topic < as[b].Topic })
		}
	}
	return nil
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// shardErr passes through errors other than *kadm.ShardErrors, which only
// mean some brokers did not answer; those groups are reported one by one.
func shardErr(err error) error {
	if _, ok := errors.AsType[*kadm.ShardErrors](err); ok {
		return nil
	}
	return err
}

func missingAnswer(err error) string {
	if err != nil {
		return err.Error()
	}
	return "no response"
}

func brokerOf(b kadm.BrokerDetail) *groupBroker {
	if b.Host == "" {
		return nil
	}
	return &groupBroker{NodeID: b.NodeID, Host: b.Host, Port: b.Port}
}

// addGroupOffsets fills in each described group's partitions: those its
// members are assigned and those it has committed, with the committed
// offset, the log's start and end and the lag. Lag is end - committed,
// never negative; with nothing committed it is unknown (-1), as Kafka's
// tool shows it, rather than a guess at what auto.offset.reset will do.
func addGroupOffsets(ctx context.Context, adm *kadm.Client, descs []*groupDescription) error {
	type owner struct{ member, client, host string }
	type tp struct {
		topic string
		part  int32
	}
	owners := make(map[*groupDescription]map[tp]owner)
	commits := make(map[*groupDescription]kadm.OffsetResponses)
	topicSet := make(map[string]bool)
	for _, d := range descs {
		if d.Error != "" {
			continue
		}
		os, err := adm.FetchOffsets(ctx, d.Group)
		if err != nil {
			d.Error = "fetch offsets: " + err.Error()
			continue
		}
		commits[d] = os
		own := make(map[tp]owner)
		for _, m := range d.Members {
			for _, t := range m.Assigned {
				topicSet[t.Topic] = true
				for _, p := range t.Partitions {
					own[tp{t.Topic, p}] = owner{m.MemberID, m.ClientID, m.Host}
				}
			}
		}
		owners[d] = own
		for t := range os {
			topicSet[t] = true
		}
	}
	if len(topicSet) == 0 {
		return nil
	}
	topics := make([]string, 0, len(topicSet))
	for t := range topicSet {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	// A shard error leaves partitions out of the listing; they show as
	// "end offset not listed" below.
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err := shardErr(err); err != nil {
		return fmt.Errorf("cli: list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err := shardErr(err); err != nil {
		return fmt.Errorf("cli: list end offsets: %w", err)
	}
	for _, d := range descs {
		os, ok := commits[d]
		if !ok {
			continue
		}
		own := owners[d]
		seen := make(map[tp]bool)
		var keys []tp
		for k := range own {
			seen[k] = true
			keys = append(keys, k)
		}
		for t, ps := range os {
			for p := range ps {
				if k := (tp{t, p}); !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
		sort.Slice(keys, func(i, j int) bool {
			if keys[i].topic != keys[j].topic {
				return keys[i].topic < keys[j].topic
			}
			return keys[i].part < keys[j].part
		})
		byTopic := make(map[string]int64)
		var topicOrder []string
		for _, k := range keys {
			o := own[k]
			gp := groupPartition{
				Topic: k.topic, Partition: k.part, Committed: -1, LogStart: -1, LogEnd: -1, Lag: -1,
				MemberID: o.member, ClientID: o.client, Host: o.host,
			}
			var errs []string
			if c, ok := os.Lookup(k.topic, k.part); ok {
				if c.Err != nil {
					errs = append(errs, "committed: "+c.Err.Error())
				} else if c.At >= 0 {
					gp.Committed = c.At
				}
			}
			if s, ok := starts.Lookup(k.topic, k.part); ok && s.Err == nil {
				gp.LogStart = s.Offset
			}
			switch e, ok := ends.Lookup(k.topic, k.part); {
			case !ok:
				errs = append(errs, "end offset not listed")
			case e.Err != nil:
				errs = append(errs, "end offset: "+e.Err.Error())
			default:
				gp.LogEnd = e.Offset
			}
			if gp.Committed >= 0 && gp.LogEnd >= 0 {
				gp.Lag = max(gp.LogEnd-gp.Committed, 0)
			}
			gp.Error = strings.Join(errs, "; ")
			if _, ok := byTopic[k.topic]; !ok {
				topicOrder = append(topicOrder, k.topic)
				byTopic[k.topic] = 0
			}
			if gp.Lag > 0 {
				byTopic[k.topic] += gp.Lag
				d.TotalLag += gp.Lag
			}
			d.Partitions = append(d.Partitions, gp)
		}
		for _, t := range topicOrder {
			d.TopicLags = append(d.TopicLags, groupTopicLag{Topic: t, Lag: byTopic[t]})
		}
	}
	return nil
}

func printGroupDescriptions(cmd *cobra.Command, descs []*groupDescription) error {
	w := cmd.OutOrStdout()
	for i, d := range descs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		t := newTable(w)
		t.row("GROUP", d.Group)
		if d.notFound {
			t.row("ERROR", d.Error)
			if err := t.flush(); err != nil {
				return err
			}
			continue
		}
		t.row("TYPE", d.Type)
		t.row("PROTOCOL-TYPE", orDash(d.ProtocolType))
		t.row("PROTOCOL", orDash(d.Protocol))
		t.row("STATE", orDash(d.State))
		t.row("COORDINATOR", d.Coordinator.String())
		t.row("MEMBERS", len(d.Members))
		t.row("TOTAL-LAG", d.TotalLag)
		if d.Error != "" {
			t.row("ERROR", d.Error)
		}
		if err := t.flush(); err != nil {
			return err
		}
		if len(d.Members) > 0 {
			fmt.Fprintln(w, "\nMEMBERS")
			t = newTable(w, "MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNED")
			for _, m := range d.Members {
				var as []string
				for _, a := range m.Assigned {
					as = append(as, a.Topic+":"+joinInt32s(a.Partitions))
				}
				t.row(m.MemberID, orDash(m.InstanceID), m.ClientID, m.Host, orDash(strings.Join(as, " ")))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if len(d.Partitions) > 0 {
			fmt.Fprintln(w, "\nPARTITIONS")
			t = newTable(w, "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST", "ERROR")
			for _, p := range d.Partitions {
				t.row(p.Topic, p.Partition, orDashN(p.Committed), orDashN(p.LogEnd), orDashN(p.Lag),
					orDash(p.MemberID), orDash(p.ClientID), orDash(p.Host), orDash(p.Error))
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if len(d.TopicLags) > 1 {
			fmt.Fprintln(w, "\nLAG BY TOPIC")
			t = newTable(w, "TOPIC", "LAG")
			for _, l := range d.TopicLags {
				t.row(l.Topic, l.Lag)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// orDashN renders an unknown (negative) offset or lag as "-".
func orDashN(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}
