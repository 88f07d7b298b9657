package broker

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// handleDescribeConfigs reports topic configs (every one, with its value
// and source) and the broker's static configs.
func (b *Broker) handleDescribeConfigs(_ context.Context, r *server.Request) server.Pending {
	req := r.Body.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		or := kmsg.NewDescribeConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		entries, err := b.configEntries(rr.ResourceType, rr.ResourceName)
		if err != nil {
			or.ErrorCode = errorCode(err)
			or.ErrorMessage = errorMessage(err)
			resp.Resources = append(resp.Resources, or)
			continue
		}
		want := map[string]bool{}
		for _, n := range rr.ConfigNames {
			want[n] = true
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !want[e.name] {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			value := e.value
			c.Name, c.Value, c.ReadOnly, c.Source = e.name, &value, e.readOnly, e.source
			c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
			c.ConfigType = kmsg.ConfigType(e.typ)
			if req.IncludeDocumentation {
				doc := e.doc
				c.Documentation = &doc
			}
			if req.IncludeSynonyms {
				for _, s := range e.synonyms {
					sv := s.value
					c.ConfigSynonyms = append(c.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: s.name, Value: &sv, Source: s.source})
				}
			}
			or.Configs = append(or.Configs, c)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return done(resp)
}

func (b *Broker) configEntries(typ kmsg.ConfigResourceType, name string) ([]configEntry, error) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		st := b.topic(name)
		if st == nil {
			return nil, fmt.Errorf("%w: %q", errUnknownTopic, name)
		}
		return b.topicConfigEntries(st), nil
	case kmsg.ConfigResourceTypeBroker:
		if err := b.checkBrokerResource(name); err != nil {
			return nil, err
		}
		return b.brokerConfigEntries(), nil
	}
	return nil, fmt.Errorf("%w: resource type %v", errUnsupportedResource, typ)
}

// checkBrokerResource accepts this broker's id, or "" (the cluster-wide
// default resource).
func (b *Broker) checkBrokerResource(name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil || int32(id) != b.opts.NodeID {
		return fmt.Errorf("%w: broker %q; this node is %d", errInvalidRequest, name, b.opts.NodeID)
	}
	return nil
}
