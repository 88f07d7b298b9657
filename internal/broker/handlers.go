package broker

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// handler serves one API key over a range of versions.
type handler struct {
	min, max int16
	fn       func(b *Broker, ctx context.Context, req *server.Request) server.Pending
}

// handlers is the table of what the broker serves. ApiVersions is built
// from it, so nothing is advertised that is not handled. Minimum versions
// are the oldest whose semantics we implement: Produce v3 and Fetch v4 are
// the first with RecordBatch v2, the only format we store.
var handlers map[int16]handler

func init() {
	handlers = map[int16]handler{
		int16(kmsg.Produce):                 {3, 13, (*Broker).handleProduce},
		int16(kmsg.Fetch):                   {4, 18, (*Broker).handleFetch},
		int16(kmsg.ListOffsets):             {0, 11, (*Broker).handleListOffsets},
		int16(kmsg.Metadata):                {0, 13, (*Broker).handleMetadata},
		int16(kmsg.ApiVersions):             {0, 5, (*Broker).handleApiVersions},
		int16(kmsg.CreateTopics):            {0, 7, (*Broker).handleCreateTopics},
		int16(kmsg.DeleteTopics):            {0, 6, (*Broker).handleDeleteTopics},
		int16(kmsg.DeleteRecords):           {0, 2, (*Broker).handleDeleteRecords},
		int16(kmsg.OffsetForLeaderEpoch):    {0, 4, (*Broker).handleOffsetForLeaderEpoch},
		int16(kmsg.DescribeConfigs):         {0, 4, (*Broker).handleDescribeConfigs},
		int16(kmsg.AlterConfigs):            {0, 2, (*Broker).handleAlterConfigs},
		int16(kmsg.DescribeLogDirs):         {0, 5, (*Broker).handleDescribeLogDirs},
		int16(kmsg.CreatePartitions):        {0, 3, (*Broker).handleCreatePartitions},
		int16(kmsg.IncrementalAlterConfigs): {0, 1, (*Broker).handleIncrementalAlterConfigs},
		int16(kmsg.DescribeCluster):         {0, 2, (*Broker).handleDescribeCluster},
		int16(kmsg.FindCoordinator):         {0, 6, (*Broker).handleFindCoordinator},
		int16(kmsg.DescribeProducers):       {0, 0, (*Broker).handleDescribeProducers},
	}
	addGroupHandlers(handlers)
	addTxnHandlers(handlers)
}

// Versions implements server.Handler.
func (b *Broker) Versions(key int16) (minVersion, maxVersion int16, ok bool) {
	h, ok := handlers[key]
	if !ok {
		return 0, 0, false
	}
	return h.min, h.max, true
}

// Handle implements server.Handler.
func (b *Broker) Handle(ctx context.Context, req *server.Request) server.Pending {
	if req.UnsupportedVersion {
		// Only ApiVersions arrives this way (KIP-511): answer with our
		// range so the client retries at a version we serve.
		h := handlers[int16(kmsg.ApiVersions)]
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: int16(kmsg.ApiVersions), MinVersion: h.min, MaxVersion: h.max}}
		return done(resp)
	}
	h, ok := handlers[req.Key]
	if !ok || req.Body == nil {
		// The server decodes only what Versions admits; this is
		// unreachable, but input must never panic the broker.
		return server.Done{NoResponse: true, Close: true}
	}
	return h.fn(b, ctx, req)
}

func done(msg kmsg.Response) server.Pending { return server.Done{Msg: msg} }

// apiKeys lists the handler table as ApiVersions reports it.
func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(handlers))
	for k, h := range handlers {
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: h.min, MaxVersion: h.max})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ApiKey < out[j].ApiKey })
	return out
}

func (b *Broker) handleApiVersions(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.ApiVersionsRequest)
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	// v3+ names the client software; Kafka refuses names outside
	// [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?.
	if req.Version >= 3 && (!validSoftwareName(req.ClientSoftwareName) || !validSoftwareName(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return done(resp)
	}
	// v5+ (KIP-1242) names the cluster and node the client meant to
	// reach: both or neither; a mismatch asks it to rebootstrap.
	if req.Version >= 5 {
		hasCluster, hasNode := req.ClusterID != nil, req.NodeID != -1
		switch {
		case hasCluster != hasNode:
			resp.ErrorCode = kerr.InvalidRequest.Code
			return done(resp)
		case hasCluster && (*req.ClusterID != b.opts.ClusterID || req.NodeID != b.opts.NodeID):
			resp.ErrorCode = kerr.RebootstrapRequired.Code
			return done(resp)
		}
	}
	resp.ApiKeys = apiKeys()
	return done(resp)
}

func validSoftwareName(s string) bool {
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	if s == "" || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
