package broker

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/storage"
	"github.com/sluice-io/sluice/internal/topics"
)

// Topic changes. Each one writes the registry first (the source of truth),
// then changes the partitions, then publishes the new state, all under
// adminMu. A crash between the steps is finished by reconcile at start-up.

func sortTopics(ts []*topicState) {
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
}

// collisionKey is how Kafka decides two names collide in metric names:
// '.' and '_' are the same.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

// checkNewTopic validates a topic to be created and returns its
// partition count (num.partitions for -1).
func (b *Broker) checkNewTopic(name string, n int32, configs map[string]string) (int32, error) {
	if !storage.ValidTopicName(name) {
		return 0, fmt.Errorf("%w: %q: names are 1 to 249 characters of [a-zA-Z0-9._-], and not . or ..", errInvalidTopic, name)
	}
	if n == -1 {
		n = b.opts.NumPartitions
	}
	if n < 1 || n > topics.MaxPartitions {
		return 0, fmt.Errorf("%w: %d partitions; must be in [1, %d]", errInvalidPartitions, n, topics.MaxPartitions)
	}
	if err := topics.Validate(configs); err != nil {
		return 0, err
	}
	return n, nil
}

// createTopic creates a topic with n partitions (-1: num.partitions) and
// the given configs. With validateOnly nothing changes, and the returned
// state has no partitions.
func (b *Broker) createTopic(name string, n int32, configs map[string]string, validateOnly bool) (*topicState, error) {
	n, err := b.checkNewTopic(name, n, configs)
	if err != nil {
		return nil, err
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.topic(name) != nil {
		return nil, fmt.Errorf("%w: %q", errTopicExists, name)
	}
	key := collisionKey(name)
	for _, t := range b.allTopics() {
		if collisionKey(t.name) == key {
			return nil, fmt.Errorf("%w: %q collides with existing topic %q ('.' and '_' collide)", errInvalidTopic, name, t.name)
		}
	}
	t := topics.Topic{Name: name, ID: topics.NewID(), Partitions: n, Configs: configs}
	if validateOnly {
		st := &topicState{name: name, id: t.ID, parts: make([]*partition.Partition, n)}
		if err := b.setConfigs(st, configs); err != nil {
			return nil, err
		}
		return st, nil
	}
	if err := b.reg.Create(t); err != nil {
		return nil, err
	}
	st, err := b.buildState(t)
	if err != nil {
		// Undo what we can; reconcile at the next start finishes it.
		if _, derr := b.reg.Delete(name); derr == nil {
			for i := int32(0); i < n; i++ {
				_ = b.eng.DeletePartition(t.ID, i)
			}
		}
		return nil, err
	}
	b.publish(st)
	b.topicsChanged()
	b.log.Info("topic created", "topic", name, "partitions", n, "id", topics.ID(t.ID).String())
	return st, nil
}

// topicsChanged tells the group coordinator, whose KIP-848 groups assign
// partitions themselves, that topics or partition counts changed.
func (b *Broker) topicsChanged() {
	if b.coord != nil {
		b.coord.TopicsChanged()
	}
}

// deleteTopic removes a topic and its data.
func (b *Broker) deleteTopic(name string) (*topicState, error) {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	st := b.topic(name)
	if st == nil {
		return nil, fmt.Errorf("%w: %q", errUnknownTopic, name)
	}
	if isInternal(name) {
		return nil, fmt.Errorf("%w: %s is an internal topic and cannot be deleted", errInvalidRequest, name)
	}
	if _, err := b.reg.Delete(name); err != nil {
		return nil, err
	}
	b.unpublish(st)
	for i := range st.parts {
		if err := b.eng.DeletePartition(st.id, int32(i)); err != nil {
			// The registry no longer lists the topic: the next
			// start deletes what is left.
			b.log.Error("broker: deleting partition data failed", "topic", name, "partition", i, "err", err)
		}
	}
	b.log.Info("topic deleted", "topic", name, "id", topics.ID(st.id).String())
	return st, nil
}

// createPartitions grows a topic to n partitions.
func (b *Broker) createPartitions(name string, n int32, validateOnly bool) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	st := b.topic(name)
	if st == nil {
		return fmt.Errorf("%w: %q", errUnknownTopic, name)
	}
	if isInternal(name) {
		// Groups are placed by hashing over the partition count.
		return fmt.Errorf("%w: %s is an internal topic; its partition count cannot change", errInvalidRequest, name)
	}
	have := int32(len(st.parts))
	if n <= have {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be larger", errInvalidPartitions, name, have, n)
	}
	if n > topics.MaxPartitions {
		return fmt.Errorf("%w: %d partitions exceeds %d", errInvalidPartitions, n, topics.MaxPartitions)
	}
	if validateOnly {
		return nil
	}
	if err := b.reg.Update(topics.Topic{Name: name, ID: st.id, Partitions: n, Configs: st.configs}); err != nil {
		return err
	}
	next := *st
	next.parts = slices.Clone(st.parts)
	ids := make([]partition.ID, 0, n-have)
	for i := have; i < n; i++ {
		ids = append(ids, partition.ID{Topic: name, TopicID: st.id, Partition: i})
	}
	ps, err := b.eng.CreatePartitions(ids, st.cfg)
	if err != nil {
		// The registry lists n partitions; reconcile creates them at
		// the next start. Publish what exists.
		b.publish(&next)
		return err
	}
	next.parts = append(next.parts, ps...)
	b.publish(&next)
	b.topicsChanged()
	b.log.Info("partitions created", "topic", name, "from", have, "to", n)
	return nil
}

// setTopicConfigs replaces a topic's own configs; they take effect on its
// partitions at once.
func (b *Broker) setTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
	if err := topics.Validate(configs); err != nil {
		return err
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	st := b.topic(name)
	if st == nil {
		return fmt.Errorf("%w: %q", errUnknownTopic, name)
	}
	next := *st
	if err := b.setConfigs(&next, configs); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if err := b.reg.Update(topics.Topic{Name: name, ID: st.id, Partitions: int32(len(st.parts)), Configs: next.configs}); err != nil {
		return err
	}
	for _, p := range next.parts {
		if err := p.SetConfig(next.cfg); err != nil {
			return err
		}
	}
	b.publish(&next)
	b.log.Info("topic configs changed", "topic", name, "configs", next.configs)
	return nil
}
