package status

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []dashVariable `json:"list"`
	} `json:"templating"`
	Panels []dashPanel `json:"panels"`
}

type dashVariable struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Query any    `json:"query"`
}

type dashPanel struct {
	ID         int    `json:"id"`
	Title      string `json:"title"`
	Datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// collectorMetrics returns the names of the metrics a Collector describes.
func collectorMetrics(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	NewCollector(metricsSnapshot, nil).Describe(ch)
	close(ch)
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		m := fq.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no fqName in %s", d)
		}
		names = append(names, m[1])
	}
	return names
}

// TestGrafanaDashboard keeps scripts/grafana-dashboard.json importable and
// in step with the metrics: every query names only metrics fastws exposes,
// and every fastws metric is on some panel. scripts/prometheus/e2e.sh runs
// the queries on a real Prometheus.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../scripts/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("got title %q, uid %q; want both set", d.Title, d.UID)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("got schemaVersion %d, want at least 36 (datasource references by uid)", d.SchemaVersion)
	}
	hasDatasource := slices.ContainsFunc(d.Templating.List, func(v dashVariable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	})
	if !hasDatasource {
		t.Error("no Prometheus datasource variable named datasource")
	}

	exposed := collectorMetrics(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	name := regexp.MustCompile(`\bfastws_[a-z_]+\b`)
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: got datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(q.Expr, -1) {
				if !slices.Contains(exposed, m) {
					t.Errorf("panel %q: query %q uses %s, which fastws does not expose", p.Title, q.Expr, m)
				}
				used[m] = true
			}
		}
	}
	for _, m := range exposed {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
	for _, want := range []string{"connections", "messages", "broadcast", "slow consumers", "errors", "close reasons"} {
		if !slices.ContainsFunc(d.Panels, func(p dashPanel) bool {
			return strings.Contains(strings.ToLower(p.Title), want)
		}) {
			t.Errorf("no panel titled with %q", want)
		}
	}
}
