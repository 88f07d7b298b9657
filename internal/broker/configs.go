package broker

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/topics"
)

// configEntry is one config as DescribeConfigs (and CreateTopics v5+)
// report it.
type configEntry struct {
	name, value string
	source      kmsg.ConfigSource
	readOnly    bool
	typ         topics.Type
	doc         string
	synonyms    []configSynonym
}

type configSynonym struct {
	name, value string
	source      kmsg.ConfigSource
}

// topicConfigEntries lists every topic config of st with its value and
// where the value comes from: set on the topic (DYNAMIC_TOPIC_CONFIG), the
// broker's own default (STATIC_BROKER_CONFIG), or Kafka's default
// (DEFAULT_CONFIG). Synonyms run from the most to the least specific.
func (b *Broker) topicConfigEntries(st *topicState) []configEntry {
	out := make([]configEntry, 0, len(topics.Defs))
	for _, d := range topics.Defs {
		e := configEntry{name: d.Name, value: d.Default, source: kmsg.ConfigSourceDefaultConfig, typ: d.Type, doc: d.Doc}
		if v, ok := st.configs[d.Name]; ok {
			e.synonyms = append(e.synonyms, configSynonym{d.Name, v, kmsg.ConfigSourceDynamicTopicConfig})
		}
		if v, ok := b.opts.TopicDefaults[d.Name]; ok {
			e.synonyms = append(e.synonyms, configSynonym{d.BrokerName, v, kmsg.ConfigSourceStaticBrokerConfig})
		}
		e.synonyms = append(e.synonyms, configSynonym{d.BrokerName, d.Default, kmsg.ConfigSourceDefaultConfig})
		e.value, e.source = e.synonyms[0].value, e.synonyms[0].source
		out = append(out, e)
	}
	return out
}

// brokerConfigEntries lists the broker's configs. They are static: set at
// start-up by flags, environment or file, and read-only here.
func (b *Broker) brokerConfigEntries() []configEntry {
	static := func(name, value, doc string, typ topics.Type) configEntry {
		return configEntry{name: name, value: value, source: kmsg.ConfigSourceStaticBrokerConfig, readOnly: true, typ: typ, doc: doc,
			synonyms: []configSynonym{{name, value, kmsg.ConfigSourceStaticBrokerConfig}}}
	}
	adv := fmt.Sprintf("PLAINTEXT://%s:%d", b.adv.host, b.adv.port)
	out := []configEntry{
		static("node.id", strconv.Itoa(int(b.opts.NodeID)), "This broker's id.", topics.TypeInt),
		static("broker.id", strconv.Itoa(int(b.opts.NodeID)), "Same as node.id.", topics.TypeInt),
		static("log.dirs", b.opts.Dir, "The data directory.", topics.TypeString),
		static("listeners", "PLAINTEXT://"+b.srv.Addr().String(), "The address the broker listens on.", topics.TypeList),
		static("advertised.listeners", adv, "The address clients are told to connect to.", topics.TypeList),
		static("num.partitions", strconv.Itoa(int(b.opts.NumPartitions)), "Partitions of auto-created topics.", topics.TypeInt),
		static("auto.create.topics.enable", strconv.FormatBool(!b.opts.DisableAutoCreateTopics), "Create unknown topics on Metadata requests.", topics.TypeBoolean),
		static("default.replication.factor", "1", "A single node keeps one replica.", topics.TypeInt),
		static("offsets.topic.replication.factor", "1", "A single node keeps one replica.", topics.TypeInt),
		static("fetch.max.bytes", strconv.Itoa(int(b.opts.FetchMaxBytes)), "Largest records payload of one fetch response.", topics.TypeInt),
		static("max.incremental.fetch.session.cache.slots", strconv.Itoa(b.opts.FetchSessionCacheSlots), "Fetch sessions kept.", topics.TypeInt),
	}
	for _, d := range topics.Defs {
		if d.BrokerName == "" {
			continue
		}
		e := configEntry{name: d.BrokerName, value: d.Default, source: kmsg.ConfigSourceDefaultConfig, readOnly: true, typ: d.Type, doc: d.Doc}
		if v, ok := b.opts.TopicDefaults[d.Name]; ok {
			e.value, e.source = v, kmsg.ConfigSourceStaticBrokerConfig
			e.synonyms = append(e.synonyms, configSynonym{d.BrokerName, v, kmsg.ConfigSourceStaticBrokerConfig})
		}
		e.synonyms = append(e.synonyms, configSynonym{d.BrokerName, d.Default, kmsg.ConfigSourceDefaultConfig})
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	// Drop duplicates (a synonym that is also listed statically).
	dedup := out[:0]
	for i, e := range out {
		if i > 0 && e.name == out[i-1].name {
			continue
		}
		dedup = append(dedup, e)
	}
	return dedup
}

// requestConfigs turns a request's name/value list into a map, refusing a
// null value and a name given twice.
func requestConfigs(n int, at func(i int) (string, *string)) (map[string]string, error) {
	out := make(map[string]string, n)
	for i := 0; i < n; i++ {
		name, v := at(i)
		if v == nil {
			return nil, fmt.Errorf("%w: null value for %q", errInvalidConfig, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%w: %q given twice", errInvalidRequest, name)
		}
		out[name] = *v
	}
	return out, nil
}
