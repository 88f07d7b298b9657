package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// Coordinator key types (FindCoordinator's key_type).
const (
	coordinatorGroup       = 0
	coordinatorTransaction = 1
)

// handleFindCoordinator answers with this node for every group: a single
// node coordinates everything. The offsets topic is created on the first
// request for a group, and the transaction-state topic on the first for a
// transactional id, as Kafka does.
func (b *Broker) handleFindCoordinator(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	var err error
	switch req.CoordinatorType {
	case coordinatorGroup:
		_, err = b.ensureOffsetsTopic()
	case coordinatorTransaction:
		_, err = b.ensureTxnTopic()
	default:
		err = fmt.Errorf("%w: coordinator key type %d", errInvalidRequest, req.CoordinatorType)
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.NodeID, c.Host, c.Port = -1, "", -1
		if err != nil {
			c.ErrorCode = errorCode(err)
			msg := err.Error()
			c.ErrorMessage = &msg
		} else {
			c.NodeID, c.Host, c.Port = b.opts.NodeID, b.adv.host, b.adv.port
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return done(resp)
}
