package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// handleAlterConfigs replaces a topic's configs with the given set (the
// non-incremental API: anything not listed returns to its default). Broker
// configs are static and refused.
func (b *Broker) handleAlterConfigs(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	seen := countResources(req.Resources, func(rr kmsg.AlterConfigsRequestResource) (kmsg.ConfigResourceType, string) {
		return rr.ResourceType, rr.ResourceName
	})
	for _, rr := range req.Resources {
		or := kmsg.NewAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch {
		case seen[rr.ResourceType][rr.ResourceName] > 1:
			err = fmt.Errorf("%w: %q", errDuplicateResource, rr.ResourceName)
		case rr.ResourceType == kmsg.ConfigResourceTypeTopic:
			var configs map[string]string
			configs, err = requestConfigs(len(rr.Configs), func(i int) (string, *string) { return rr.Configs[i].Name, rr.Configs[i].Value })
			if err == nil {
				err = b.setTopicConfigs(rr.ResourceName, configs, req.ValidateOnly)
			}
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

// refuseBrokerAlter answers an alteration of broker configs: they are set
// at start-up only. An empty alteration is a no-op and succeeds.
func (b *Broker) refuseBrokerAlter(name string, n int) error {
	if err := b.checkBrokerResource(name); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%w: broker configs are static; set them by flag, environment or config file and restart", errInvalidConfig)
}

// countResources counts how often each (type, name) appears in an alter
// request; Kafka refuses every resource named more than once.
func countResources[R any](rs []R, key func(R) (kmsg.ConfigResourceType, string)) map[kmsg.ConfigResourceType]map[string]int {
	seen := map[kmsg.ConfigResourceType]map[string]int{}
	for _, r := range rs {
		t, n := key(r)
		if seen[t] == nil {
			seen[t] = map[string]int{}
		}
		seen[t][n]++
	}
	return seen
}
