package metrics

import "github.com/prometheus/client_golang/prometheus/testutil/promlint"

func lint(m *Metrics) ([]promlint.Problem, error) {
	mfs, err := m.reg.Gather()
	if err != nil {
		return nil, err
	}
	return promlint.NewWithMetricFamilies(mfs).Lint()
}
