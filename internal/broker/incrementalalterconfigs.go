package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
	"github.com/sluice-io/sluice/internal/topics"
)

// handleIncrementalAlterConfigs applies SET, DELETE, APPEND and SUBTRACT to
// a topic's configs; they take effect on its partitions at once.
func (b *Broker) handleIncrementalAlterConfigs(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	seen := countResources(req.Resources, func(rr kmsg.IncrementalAlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
		return rr.ResourceType, rr.ResourceName
	})
	for _, rr := range req.Resources {
		or := kmsg.NewIncrementalAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch {
		case seen[rr.ResourceType][rr.ResourceName] > 1:
			err = fmt.Errorf("%w: %q", errDuplicateResource, rr.ResourceName)
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			err = b.alterTopicIncrementally(rr, req.ValidateOnly)
		case rr.ResourceType == kmsg.ConfigResourceTypeBroker:
			err = b.refuseBrokerAlter(rr.ResourceName, len(rr.Configs))
		default:
			err = fmt.Errorf("%w: resource type %v", errUnsupportedResource, rr.ResourceType)
		}
		or.ErrorCode = errorCode(err)
		or.ErrorMessage = errorMessage(err)
		resp.Resources = append(resp.Resources, or)
	}
	return done(resp)
}

func (b *Broker) alterTopicIncrementally(rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	st := b.topic(rr.ResourceName)
	if st == nil {
		return fmt.Errorf("%w: %q", errUnknownTopic, rr.ResourceName)
	}
	configs := maps.Clone(st.configs)
	names := map[string]bool{}
	for _, c := range rr.Configs {
		if names[c.Name] {
			return fmt.Errorf("%w: %q altered twice", errInvalidRequest, c.Name)
		}
		names[c.Name] = true
		d, ok := topics.Lookup(c.Name)
		if !ok {
			return fmt.Errorf("%w: unknown topic config %q", errInvalidConfig, c.Name)
		}
		value := ""
		if c.Value != nil {
			value = *c.Value
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return fmt.Errorf("%w: SET %q with a null value", errInvalidConfig, c.Name)
			}
			configs[c.Name] = value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(configs, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.Type != topics.TypeList {
				return fmt.Errorf("%w: %v on %q, which is not a list", errInvalidConfig, c.Op, c.Name)
			}
			cur := topics.ListValues(st.eff[c.Name])
			for _, v := range topics.ListValues(value) {
				has := slices.Contains(cur, v)
				switch {
				case c.Op == kmsg.IncrementalAlterConfigOpAppend && !has:
					cur = append(cur, v)
				case c.Op == kmsg.IncrementalAlterConfigOpSubtract && has:
					cur = slices.DeleteFunc(cur, func(s string) bool { return s == v })
				}
			}
			configs[c.Name] = strings.Join(cur, ",")
		default:
			return fmt.Errorf("%w: unknown operation %d on %q", errInvalidRequest, c.Op, c.Name)
		}
	}
	return b.setTopicConfigs(rr.ResourceName, configs, validateOnly)
}
