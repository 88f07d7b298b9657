package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/sluice-io/sluice/internal/server"
)

// handleDescribeLogDirs reports the one data directory: partition sizes,
// and the filesystem's total and usable bytes (v4+).
func (b *Broker) handleDescribeLogDirs(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = b.opts.Dir
	dir.TotalBytes, dir.UsableBytes = -1, -1
	var fs unix.Statfs_t
	if err := unix.Statfs(b.opts.Dir, &fs); err == nil {
		dir.TotalBytes = int64(fs.Blocks) * fs.Bsize
		dir.UsableBytes = int64(fs.Bavail) * fs.Bsize
	}
	addTopic := func(st *topicState, parts []int32) {
		dt := kmsg.NewDescribeLogDirsResponseDirTopic()
		dt.Topic = st.name
		for _, i := range parts {
			p := st.partition(i)
			if p == nil {
				continue
			}
			dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			dp.Partition = i
			dp.Size = p.Size()
			dt.Partitions = append(dt.Partitions, dp)
		}
		dir.Topics = append(dir.Topics, dt)
	}
	if req.Topics == nil {
		for _, st := range b.allTopics() {
			all := make([]int32, len(st.parts))
			for i := range all {
				all[i] = int32(i)
			}
			addTopic(st, all)
		}
	} else {
		for _, rt := range req.Topics {
			if st := b.topic(rt.Topic); st != nil {
				addTopic(st, rt.Partitions)
			}
		}
	}
	resp.Dirs = []kmsg.DescribeLogDirsResponseDir{dir}
	return done(resp)
}
