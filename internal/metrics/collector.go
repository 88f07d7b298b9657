package metrics

import (
	"cmp"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluice-io/sluice/internal/admin"
)

// collector reads the Source and the stats snapshots at scrape time.
type collector struct{ m *Metrics }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// The scrape-time metrics. docs/metrics.md lists them; a test checks that
// every name here is documented.
var (
	dReady = desc("sluice_ready", "1 when the broker is ready (recovery finished, listeners open, storage writable), else 0.")

	dConnections         = desc("sluice_connections", "Open Kafka client connections.")
	dConnectionsAccepted = desc("sluice_connections_accepted_total", "Kafka client connections accepted.")
	dConnectionsRejected = desc("sluice_connections_rejected_total", "Kafka client connections closed at once (max.connections or shutting down).")
	dInFlight            = desc("sluice_requests_in_flight", "Kafka requests read and not yet answered.")
	dNetIn               = desc("sluice_network_received_bytes_total", "Kafka request bytes read, size prefixes included.")
	dNetOut              = desc("sluice_network_sent_bytes_total", "Kafka response bytes written, size prefixes included.")
	dFileBytes           = desc("sluice_fetch_file_bytes_total", "Record bytes sent from segment files, by method: sendfile (zero-copy) or copy.", "method")

	dTopicBytesIn    = desc("sluice_topic_received_bytes_total", "Record batch bytes produced to a topic and acknowledged.", "topic")
	dTopicRecordsIn  = desc("sluice_topic_received_records_total", "Records produced to a topic and acknowledged.", "topic")
	dTopicBytesOut   = desc("sluice_topic_sent_bytes_total", "Record batch bytes fetched from a topic.", "topic")
	dTopicRecordsOut = desc("sluice_topic_sent_records_total", "Records fetched from a topic, where known.", "topic")

	dTopics              = desc("sluice_topics", "Topics, internal ones included.")
	dPartitions          = desc("sluice_partitions", "Partitions, of internal topics included.")
	dPartitionSize       = desc("sluice_partition_size_bytes", "Bytes of a partition's segment files.", "topic", "partition")
	dPartitionSegments   = desc("sluice_partition_segments", "Segments of a partition.", "topic", "partition")
	dPartitionLogStart   = desc("sluice_partition_log_start_offset", "First offset still in a partition's log.", "topic", "partition")
	dPartitionHW         = desc("sluice_partition_high_watermark", "A partition's high watermark.", "topic", "partition")
	dPartitionLastStable = desc("sluice_partition_last_stable_offset", "A partition's last stable offset.", "topic", "partition")

	dGroups         = desc("sluice_consumer_groups", "Consumer groups, by state.", "state")
	dGroupMembers   = desc("sluice_consumer_group_members", "Members of a consumer group.", "group")
	dGroupLag       = desc("sluice_consumer_group_lag", "A consumer group's lag summed over its partitions, in records.", "group")
	dLag            = desc("sluice_consumer_lag", "A consumer group's lag in one partition: end offset minus committed offset, in records.", "group", "topic", "partition")
	dLagDropped     = desc("sluice_consumer_lag_series_dropped_total", "Lag series left out of scrapes by MaxLagSeries, summed over scrapes.")
	dRecovery       = desc("sluice_recovery_duration_seconds", "How long startup recovery took.")
	dDiskFree       = desc("sluice_disk_free_bytes", "Free bytes on the data directory's file system, for unprivileged users.")
	dDiskTotal      = desc("sluice_disk_total_bytes", "Size of the data directory's file system.")
	dStoreAppends   = desc("sluice_storage_appends_total", "Batches appended to partition logs.")
	dStoreBytes     = desc("sluice_storage_append_bytes_total", "Bytes of batches appended to partition logs.")
	dCheckpoints    = desc("sluice_checkpoints_total", "Storage checkpoints written.")
	dRetention      = desc("sluice_retention_deleted_segments_total", "Segments deleted by retention.")
	dCompactions    = desc("sluice_compactions_total", "Compaction passes that rewrote something.")
	dCompactFailed  = desc("sluice_compaction_failures_total", "Compaction passes that failed.")
	dCompactedBytes = desc("sluice_compaction_removed_bytes_total", "Bytes removed by compaction.")
	dOpenSegments   = desc("sluice_open_segment_files", "Segment files held open.")
	dIndexHits      = desc("sluice_index_cache_hits_total", "Offset and time index lookups served from the index cache.")
	dIndexMisses    = desc("sluice_index_cache_misses_total", "Offset and time index lookups that had to load the index.")
	dIndexBytes     = desc("sluice_index_cache_bytes", "Bytes held by the index cache.")

	dWALAppends     = desc("sluice_wal_appends_total", "Records accepted by the WAL.")
	dWALRecords     = desc("sluice_wal_synced_records_total", "WAL records covered by a successful sync.")
	dWALBytes       = desc("sluice_wal_synced_bytes_total", "Bytes written and synced by the WAL.")
	dWALSyncs       = desc("sluice_wal_syncs_total", "WAL group commits (write and fdatasync).")
	dWALSyncSeconds = desc("sluice_wal_sync_seconds_total", "Time spent in WAL group commits.")
	dWALRotations   = desc("sluice_wal_rotations_total", "WAL files the writer moved on to.")
	dWALRotWaits    = desc("sluice_wal_rotation_waits_total", "WAL rotations at which the next file was not ready.")
	dWALRotWaitSecs = desc("sluice_wal_rotation_wait_seconds_total", "Time the WAL writer waited for the next file.")
	dWALFiles       = desc("sluice_wal_files", "Live WAL files.")
	dWALPoolFiles   = desc("sluice_wal_pool_files", "Trimmed WAL files waiting to be recycled.")
	dWALFailed      = desc("sluice_wal_failed", "1 when the WAL has latched a write or sync failure (storage read-only until restart).")
)

var allDescs = []*prometheus.Desc{
	dReady, dConnections, dConnectionsAccepted, dConnectionsRejected, dInFlight, dNetIn, dNetOut, dFileBytes,
	dTopicBytesIn, dTopicRecordsIn, dTopicBytesOut, dTopicRecordsOut,
	dTopics, dPartitions, dPartitionSize, dPartitionSegments, dPartitionLogStart, dPartitionHW, dPartitionLastStable,
	dGroups, dGroupMembers, dGroupLag, dLag, dLagDropped, dRecovery, dDiskFree, dDiskTotal,
	dStoreAppends, dStoreBytes, dCheckpoints, dRetention, dCompactions, dCompactFailed, dCompactedBytes,
	dOpenSegments, dIndexHits, dIndexMisses, dIndexBytes,
	dWALAppends, dWALRecords, dWALBytes, dWALSyncs, dWALSyncSeconds, dWALRotations, dWALRotWaits, dWALRotWaitSecs,
	dWALFiles, dWALPoolFiles, dWALFailed,
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	o := m.opts
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	boolean := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}

	if o.Source != nil {
		gauge(dReady, boolean(o.Source.Ready() == nil))
	}
	if o.ServerStats != nil {
		// completed first: requests only grow, and every completed
		// request was read first, so the difference is never negative.
		completed := m.completed.Load()
		s := o.ServerStats()
		gauge(dConnections, float64(s.Connections))
		counter(dConnectionsAccepted, float64(s.ConnectionsAccepted))
		counter(dConnectionsRejected, float64(s.ConnectionsRejected))
		gauge(dInFlight, float64(max(int64(uint64(s.Requests)-completed), 0)))
		counter(dNetIn, float64(s.BytesIn))
		counter(dNetOut, float64(s.BytesOut))
		counter(dFileBytes, float64(s.BytesSendfile), "sendfile")
		counter(dFileBytes, float64(s.BytesCopied), "copy")
	}
	if o.StorageStats != nil {
		s := o.StorageStats()
		counter(dStoreAppends, float64(s.Appends))
		counter(dStoreBytes, float64(s.AppendBytes))
		counter(dCheckpoints, float64(s.Checkpoints))
		counter(dRetention, float64(s.RetentionDeleted))
		counter(dCompactions, float64(s.Compactions))
		counter(dCompactFailed, float64(s.CompactionFailures))
		counter(dCompactedBytes, float64(s.CompactedBytes))
		gauge(dOpenSegments, float64(s.OpenSegmentFiles))
		counter(dIndexHits, float64(s.IndexCacheHits))
		counter(dIndexMisses, float64(s.IndexCacheMisses))
		gauge(dIndexBytes, float64(s.IndexCacheBytes))
		w := s.WAL
		counter(dWALAppends, float64(w.Appends))
		counter(dWALRecords, float64(w.Records))
		counter(dWALBytes, float64(w.Bytes))
		counter(dWALSyncs, float64(w.Syncs))
		counter(dWALSyncSeconds, w.SyncTime.Seconds())
		counter(dWALRotations, float64(w.Rotations))
		counter(dWALRotWaits, float64(w.RotationWaits))
		counter(dWALRotWaitSecs, w.RotationWait.Seconds())
		gauge(dWALFiles, float64(w.Files))
		gauge(dWALPoolFiles, float64(w.PoolFiles))
		gauge(dWALFailed, boolean(w.Failed))
	}
	if o.DiskSpace != nil {
		if free, total, err := o.DiskSpace(); err != nil {
			m.log.Warn("metrics: disk space", "err", err)
		} else {
			gauge(dDiskFree, float64(free))
			gauge(dDiskTotal, float64(total))
		}
	}
	if d := m.recoveryNanos.Load(); d >= 0 {
		gauge(dRecovery, float64(d)/1e9)
	}
	if o.Source != nil {
		c.collectPartitions(gauge)
		c.collectGroups(gauge)
	}
	counter(dLagDropped, float64(m.lagDropped.Load()))

	// Per-topic counters last: collectPartitions may have claimed
	// label values for topics not produced to yet.
	topics, overflow := m.topics.snapshot()
	emit := func(name string, t *topicCounters) {
		counter(dTopicBytesIn, float64(t.bytesIn.Load()), name)
		counter(dTopicRecordsIn, float64(t.recordsIn.Load()), name)
		counter(dTopicBytesOut, float64(t.bytesOut.Load()), name)
		counter(dTopicRecordsOut, float64(t.recordsOut.Load()), name)
	}
	for name, t := range topics {
		emit(name, t)
	}
	if overflow {
		emit(OtherTopic, &m.topics.other)
	}
}

func (c *collector) collectPartitions(gauge func(*prometheus.Desc, float64, ...string)) {
	topics := c.m.opts.Source.Topics()
	// Sorted, so which topics get label values when the cap is reached
	// does not depend on the Source's order.
	slices.SortFunc(topics, func(a, b admin.Topic) int { return cmp.Compare(a.Name, b.Name) })
	var parts int
	var otherSize, otherSegments int64
	for _, t := range topics {
		parts += len(t.Partitions)
		if _, own := c.m.topics.get(t.Name); !own {
			for _, p := range t.Partitions {
				otherSize += p.SizeBytes
				otherSegments += int64(p.Segments)
			}
			continue
		}
		for _, p := range t.Partitions {
			id := strconv.FormatInt(int64(p.Partition), 10)
			gauge(dPartitionSize, float64(p.SizeBytes), t.Name, id)
			gauge(dPartitionSegments, float64(p.Segments), t.Name, id)
			gauge(dPartitionLogStart, float64(p.LogStart), t.Name, id)
			gauge(dPartitionHW, float64(p.HighWatermark), t.Name, id)
			gauge(dPartitionLastStable, float64(p.LastStable), t.Name, id)
		}
	}
	if c.m.topics.full.Load() {
		// Offsets do not add up across partitions; sizes do.
		gauge(dPartitionSize, float64(otherSize), OtherTopic, "")
		gauge(dPartitionSegments, float64(otherSegments), OtherTopic, "")
	}
	gauge(dTopics, float64(len(topics)))
	gauge(dPartitions, float64(parts))
}

func (c *collector) collectGroups(gauge func(*prometheus.Desc, float64, ...string)) {
	m := c.m
	groups := m.opts.Source.Groups()
	slices.SortFunc(groups, func(a, b admin.Group) int { return cmp.Compare(a.ID, b.ID) })
	states := map[string]int{}
	budget := m.opts.MaxLagSeries
	var dropped uint64
	for i, g := range groups {
		states[g.State]++
		if i >= budget {
			dropped += 2
		} else {
			var sum int64
			for _, l := range g.Lag {
				sum += max(l.Lag, 0)
			}
			gauge(dGroupMembers, float64(g.Members), g.ID)
			gauge(dGroupLag, float64(sum), g.ID)
		}
	}
	// Sorted too, so the series kept past the cap are always the same.
	series := 0
	for _, g := range groups {
		slices.SortFunc(g.Lag, func(a, b admin.PartitionLag) int {
			return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
		})
		for _, l := range g.Lag {
			if series >= budget {
				dropped++
				continue
			}
			series++
			gauge(dLag, float64(max(l.Lag, 0)), g.ID, l.Topic, strconv.FormatInt(int64(l.Partition), 10))
		}
	}
	for state, n := range states {
		gauge(dGroups, float64(n), state)
	}
	m.lagDropped.Add(dropped)
}
