package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// handleDeleteTopics deletes topics by name (v0-v5) or by name or topic ID
// (v6+). The data is removed from disk before the answer.
func (b *Broker) handleDeleteTopics(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range req.TopicNames {
			targets = append(targets, target{name: &req.TopicNames[i]})
		}
	}
	for _, t := range targets {
		ot := kmsg.NewDeleteTopicsResponseTopic()
		ot.Topic, ot.TopicID = t.name, t.id
		var name string
		var err error
		switch {
		case t.name != nil:
			name = *t.name
		case t.id != [16]byte{}:
			if st := b.topicByID(t.id); st != nil {
				name = st.name
			} else {
				err = errUnknownTopicID
			}
		default:
			err = errInvalidRequest
		}
		if err == nil {
			var st *topicState
			st, err = b.deleteTopic(name)
			if err == nil {
				b.coord.TopicsDeleted([]string{name})
			}
			if st != nil {
				n := st.name
				ot.Topic, ot.TopicID = &n, st.id
			}
		}
		ot.ErrorCode = errorCode(err)
		ot.ErrorMessage = errorMessage(err)
		resp.Topics = append(resp.Topics, ot)
	}
	return done(resp)
}
