package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// Endpoint types of DescribeCluster v1+.
const (
	endpointBrokers     = 1
	endpointControllers = 2
)

func (b *Broker) handleDescribeCluster(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	resp.EndpointType = req.EndpointType
	if req.Version >= 1 && req.EndpointType != endpointBrokers {
		err := fmt.Errorf("%w: %d; this node serves broker endpoints (1) only", errUnsupportedEndpointType, req.EndpointType)
		resp.ErrorCode = errorCode(err)
		resp.ErrorMessage = errorMessage(err)
		return done(resp)
	}
	resp.ClusterID = b.opts.ClusterID
	resp.ControllerID = b.opts.NodeID
	br := kmsg.NewDescribeClusterResponseBroker()
	br.NodeID, br.Host, br.Port = b.opts.NodeID, b.adv.host, b.adv.port
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{br}
	return done(resp)
}
