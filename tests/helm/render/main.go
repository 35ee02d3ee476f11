// Command helmrender renders a Helm 3 chart the way `helm template` does, with Helm's own
// template engine (Go text/template plus the sprig v3 functions) and the Helm built-ins charts
// use: include, tpl, required, fail, toYaml, fromYaml, toJson, fromJson, lookup (always empty
// here), .Values, .Release, .Chart, .Capabilities and .Template. There is no helm binary on the
// build machines; this is the stand-in the chart tests use. It loads subcharts from charts/ and
// from file:// dependencies (what `helm dependency build` would copy in).
//
// Values schema validation is not done here (no JSON-schema library in Debian's Go packages):
// --dump-values prints the coalesced values of every chart that has a values.schema.json, and
// tests/helm/render.sh validates them with python3-jsonschema before rendering, as Helm would.
//
// Build (offline, GOPATH mode, Debian's sprig and yaml under /usr/share/gocode):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o helmrender .
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/semver"
	"github.com/Masterminds/sprig"
	yaml "gopkg.in/yaml.v2"
)

const usage = `usage: helmrender [flags] CHART_DIR

Prints the chart's manifests like "helm template".
  -f, --values FILE        values file (repeatable; later files win)
  --set K=V[,K=V]          set values (repeatable; a.b=1, list[0].name=x, typed like helm)
  --set-string K=V         set values, always as strings
  --name NAME              release name (default release-name)
  -n, --namespace NS       release namespace (default default)
  --kube-version V         Kubernetes version of .Capabilities (default v1.29.0)
  --api-versions V         extra API version for .Capabilities.APIVersions.Has (repeatable)
  -s, --show-only PATH     print only the manifests from templates ending in PATH (repeatable)
  --notes                  print the rendered NOTES.txt instead of the manifests
  --dump-values            print the coalesced values of each chart with a schema, as JSON
`

type options struct {
	chartDir    string
	valueFiles  []string
	sets        []string
	setStrings  []string
	release     string
	namespace   string
	kubeVersion string
	apiVersions []string
	showOnly    []string
	notes       bool
	dumpValues  bool
}

func parseArgs(args []string) (*options, error) {
	o := &options{release: "release-name", namespace: "default", kubeVersion: "v1.29.0"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := a, "", false
		if strings.HasPrefix(a, "--") {
			if eq := strings.IndexByte(a, '='); eq >= 0 {
				name, val, hasVal = a[:eq], a[eq+1:], true
			}
		}
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("flag %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		var v string
		switch name {
		case "-f", "--values":
			v, err = next()
			o.valueFiles = append(o.valueFiles, v)
		case "--set":
			v, err = next()
			o.sets = append(o.sets, v)
		case "--set-string":
			v, err = next()
			o.setStrings = append(o.setStrings, v)
		case "--name":
			o.release, err = next()
		case "-n", "--namespace":
			o.namespace, err = next()
		case "--kube-version":
			o.kubeVersion, err = next()
		case "--api-versions":
			v, err = next()
			o.apiVersions = append(o.apiVersions, v)
		case "-s", "--show-only":
			v, err = next()
			o.showOnly = append(o.showOnly, v)
		case "--notes":
			o.notes = true
		case "--dump-values":
			o.dumpValues = true
		case "-h", "--help":
			fmt.Print(usage)
			os.Exit(0)
		default:
			if strings.HasPrefix(a, "-") {
				return nil, fmt.Errorf("unknown flag %s", a)
			}
			if o.chartDir != "" {
				return nil, fmt.Errorf("one chart directory only (got %s and %s)", o.chartDir, a)
			}
			o.chartDir = a
		}
		if err != nil {
			return nil, err
		}
	}
	if o.chartDir == "" {
		return nil, errors.New("missing CHART_DIR")
	}
	return o, nil
}

// ---- charts -------------------------------------------------------------------------------

type tplFile struct {
	name string // as Helm names it: "chart/templates/x.yaml", "parent/charts/sub/templates/x.yaml"
	data string
}

type chart struct {
	name      string
	dir       string
	meta      map[string]interface{} // Chart.yaml
	defaults  map[string]interface{} // values.yaml
	schema    string                 // path of values.schema.json, or ""
	templates []tplFile
	deps      []*chart
	prefix    string // template name prefix: "chart" or "parent/charts/sub"
}

func loadChart(dir, parentPrefix string) (*chart, error) {
	c := &chart{dir: dir}
	raw, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, fmt.Errorf("%s: not a chart: %v", dir, err)
	}
	m, err := parseYAMLMap(raw)
	if err != nil {
		return nil, fmt.Errorf("%s/Chart.yaml: %v", dir, err)
	}
	c.meta = m
	c.name, _ = m["name"].(string)
	if c.name == "" {
		return nil, fmt.Errorf("%s/Chart.yaml: name is required", dir)
	}
	if v, _ := m["apiVersion"].(string); v != "v2" {
		return nil, fmt.Errorf("%s/Chart.yaml: apiVersion must be v2 (Helm 3), not %q", dir, v)
	}
	if parentPrefix == "" {
		c.prefix = c.name
	} else {
		c.prefix = parentPrefix + "/charts/" + c.name
	}
	c.defaults = map[string]interface{}{}
	if raw, err := os.ReadFile(filepath.Join(dir, "values.yaml")); err == nil {
		if c.defaults, err = parseYAMLMap(raw); err != nil {
			return nil, fmt.Errorf("%s/values.yaml: %v", dir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "values.schema.json")); err == nil {
		c.schema, _ = filepath.Abs(filepath.Join(dir, "values.schema.json"))
	}
	tdir := filepath.Join(dir, "templates")
	err = filepath.Walk(tdir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		c.templates = append(c.templates, tplFile{c.prefix + "/" + filepath.ToSlash(rel), string(b)})
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	// Subcharts: directories under charts/, then file:// dependencies not already there.
	seen := map[string]bool{}
	if entries, err := os.ReadDir(filepath.Join(dir, "charts")); err == nil {
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			sub, err := loadChart(filepath.Join(dir, "charts", e.Name()), c.prefix)
			if err != nil {
				return nil, err
			}
			seen[sub.name] = true
			c.deps = append(c.deps, sub)
		}
	}
	deps, _ := m["dependencies"].([]interface{})
	for _, d := range deps {
		dm, _ := d.(map[string]interface{})
		name, _ := dm["name"].(string)
		repo, _ := dm["repository"].(string)
		if seen[name] {
			continue
		}
		if !strings.HasPrefix(repo, "file://") {
			return nil, fmt.Errorf("%s/Chart.yaml: dependency %q is not in charts/ and not file:// (run helm dependency build)", dir, name)
		}
		sub, err := loadChart(filepath.Join(dir, strings.TrimPrefix(repo, "file://")), c.prefix)
		if err != nil {
			return nil, err
		}
		if sub.name != name {
			return nil, fmt.Errorf("%s/Chart.yaml: dependency %q points at chart %q", dir, name, sub.name)
		}
		c.deps = append(c.deps, sub)
	}
	return c, nil
}

// chartObject is .Chart: Chart.yaml with Helm's field names (Name, Version, AppVersion...).
func chartObject(meta map[string]interface{}) map[string]interface{} {
	o := map[string]interface{}{}
	for k, v := range meta {
		switch k {
		case "apiVersion":
			k = "APIVersion"
		default:
			k = strings.ToUpper(k[:1]) + k[1:]
		}
		o[k] = v
	}
	return o
}

// ---- values ---------------------------------------------------------------------------------

// parseYAMLMap reads YAML the way Helm does (through JSON): maps have string keys, numbers are
// float64 — which is why charts write `int .port`.
func parseYAMLMap(b []byte) (map[string]interface{}, error) {
	var raw interface{}
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	j, err := json.Marshal(jsonable(raw))
	if err != nil {
		return nil, err
	}
	var m map[string]interface{}
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, errors.New("the document is not a map")
	}
	return m, nil
}

// jsonable turns yaml.v2's map[interface{}]interface{} into map[string]interface{}.
func jsonable(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = jsonable(x)
		}
		return m
	case []interface{}:
		for i := range t {
			t[i] = jsonable(t[i])
		}
	}
	return v
}

func copyValue(v interface{}) interface{} {
	switch t := v.(type) {
	case map[string]interface{}:
		m := make(map[string]interface{}, len(t))
		for k, x := range t {
			m[k] = copyValue(x)
		}
		return m
	case []interface{}:
		l := make([]interface{}, len(t))
		for i, x := range t {
			l[i] = copyValue(x)
		}
		return l
	}
	return v
}

// mergeInto lays src over dst (later -f files over earlier ones): maps merge, the rest replaces.
func mergeInto(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				mergeInto(dm, sm)
				continue
			}
		}
		dst[k] = copyValue(v)
	}
}

// coalesce fills user values from a chart's defaults, as Helm does: user values win, maps are
// merged key by key, and a user null deletes the key.
func coalesce(user, defaults map[string]interface{}) map[string]interface{} {
	for k, dv := range defaults {
		uv, present := user[k]
		switch {
		case !present:
			user[k] = copyValue(dv)
		case uv == nil:
			delete(user, k)
		default:
			um, uok := uv.(map[string]interface{})
			dm, dok := dv.(map[string]interface{})
			if uok && dok {
				coalesce(um, dm)
			}
		}
	}
	for k, v := range user {
		if v == nil {
			delete(user, k)
		}
	}
	return user
}

// coalesceTree gives every subchart its values under its name, filled from its defaults.
func coalesceTree(c *chart, vals map[string]interface{}) {
	coalesce(vals, c.defaults)
	for _, d := range c.deps {
		sub, ok := vals[d.name].(map[string]interface{})
		if !ok {
			sub = map[string]interface{}{}
			vals[d.name] = sub
		}
		if g, ok := vals["global"].(map[string]interface{}); ok {
			sg, _ := sub["global"].(map[string]interface{})
			if sg == nil {
				sg = map[string]interface{}{}
			}
			coalesce(sg, g)
			sub["global"] = sg
		}
		coalesceTree(d, sub)
	}
}

// applySet applies one --set argument: comma-separated key=value pairs; keys are dotted paths
// with optional [index]; values typed like Helm's strvals (bool, null, int64, else string).
func applySet(vals map[string]interface{}, arg string, asString bool) error {
	for _, pair := range splitUnescaped(arg, ',') {
		eq := strings.IndexByte(pair, '=')
		if eq <= 0 {
			return fmt.Errorf("--set %q: want key=value", pair)
		}
		key, raw := pair[:eq], strings.ReplaceAll(pair[eq+1:], `\,`, ",")
		var v interface{} = raw
		if !asString {
			v = typedValue(raw)
		}
		if err := setPath(vals, strings.Split(key, "."), v); err != nil {
			return fmt.Errorf("--set %s: %v", key, err)
		}
	}
	return nil
}

func splitUnescaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == sep {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func typedValue(s string) interface{} {
	switch s {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && (s == "0" || !strings.HasPrefix(strings.TrimPrefix(s, "-"), "0")) {
		return n
	}
	return s
}

var indexRe = regexp.MustCompile(`^([^\[\]]*)\[(\d+)\]$`)

func setPath(m map[string]interface{}, path []string, v interface{}) error {
	key := path[0]
	if mm := indexRe.FindStringSubmatch(key); mm != nil {
		idx, _ := strconv.Atoi(mm[2])
		if idx > 10000 {
			return fmt.Errorf("index %d too large", idx)
		}
		list, _ := m[mm[1]].([]interface{})
		for len(list) <= idx {
			list = append(list, nil)
		}
		if len(path) == 1 {
			list[idx] = v
		} else {
			sub, ok := list[idx].(map[string]interface{})
			if !ok {
				sub = map[string]interface{}{}
				list[idx] = sub
			}
			if err := setPath(sub, path[1:], v); err != nil {
				return err
			}
		}
		m[mm[1]] = list
		return nil
	}
	if len(path) == 1 {
		m[key] = v
		return nil
	}
	sub, ok := m[key].(map[string]interface{})
	if !ok {
		sub = map[string]interface{}{}
		m[key] = sub
	}
	return setPath(sub, path[1:], v)
}

// ---- the engine -----------------------------------------------------------------------------

type apiVersions []string

// Has is .Capabilities.APIVersions.Has.
func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type kubeVersion struct {
	Version, Major, Minor, GitVersion string
}

func (k kubeVersion) String() string { return k.Version }

var defaultAPIVersions = []string{
	"v1", "apps/v1", "batch/v1", "autoscaling/v1", "autoscaling/v2", "policy/v1",
	"networking.k8s.io/v1", "rbac.authorization.k8s.io/v1", "storage.k8s.io/v1",
	"coordination.k8s.io/v1", "apiextensions.k8s.io/v1", "admissionregistration.k8s.io/v1",
	"apps/v1/Deployment", "v1/Service", "v1/Secret", "v1/ConfigMap", "v1/ServiceAccount",
	"v1/PersistentVolumeClaim", "v1/ResourceQuota", "networking.k8s.io/v1/NetworkPolicy",
	"networking.k8s.io/v1/Ingress", "autoscaling/v2/HorizontalPodAutoscaler",
}

// Helm marks messages of fail and required so that the error can be shortened to them.
var warnRe = regexp.MustCompile(`HELM\[(.*)\]HELM`)

func warnWrap(s string) string { return "HELM[" + s + "]HELM" }

type engine struct {
	t     *template.Template
	depth map[string]int
}

func (e *engine) funcs() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env") // Helm leaves these out: a chart must not read the renderer's environment.
	delete(f, "expandenv")
	f["toYaml"] = toYaml
	f["fromYaml"] = fromYaml
	f["fromYamlArray"] = fromYamlArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	f["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return v, errors.New(warnWrap(msg))
		}
		if s, ok := v.(string); ok && s == "" {
			return v, errors.New(warnWrap(msg))
		}
		return v, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(warnWrap(msg)) }
	f["lookup"] = func(apiVersion, kind, ns, name string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil // no cluster, as with helm template
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		if e.depth[name] > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		e.depth[name]++
		defer func() { e.depth[name]-- }()
		var b bytes.Buffer
		if err := e.t.ExecuteTemplate(&b, name, data); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		t, err := e.t.Clone()
		if err != nil {
			return "", err
		}
		t, err = t.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %v", text, err)
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			return "", fmt.Errorf("error calling tpl: %v", err)
		}
		return strings.ReplaceAll(b.String(), "<no value>", ""), nil
	}
	return f
}

// toYaml is Helm's: through JSON (so keys are sorted and numbers plain), no trailing newline.
func toYaml(v interface{}) string {
	j, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var ms yaml.MapSlice
	var out []byte
	if err := yaml.Unmarshal(j, &ms); err == nil && len(j) > 0 && j[0] == '{' {
		out, err = yaml.Marshal(ms)
		if err != nil {
			return ""
		}
	} else {
		var any interface{}
		if err := yaml.Unmarshal(j, &any); err != nil {
			return ""
		}
		if out, err = yaml.Marshal(any); err != nil {
			return ""
		}
	}
	return strings.TrimSuffix(string(out), "\n")
}

func fromYaml(s string) map[string]interface{} {
	m, err := parseYAMLMap([]byte(s))
	if err != nil {
		return map[string]interface{}{"Error": err.Error()}
	}
	return m
}

func fromYamlArray(s string) []interface{} {
	var raw interface{}
	if err := yaml.Unmarshal([]byte(s), &raw); err != nil {
		return []interface{}{err.Error()}
	}
	l, _ := jsonable(raw).([]interface{})
	return l
}

func toJSON(v interface{}) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

func fromJSON(s string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(s string) []interface{} {
	var l []interface{}
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return []interface{}{err.Error()}
	}
	return l
}

// execError shortens a template error the way Helm does: "execution error at (FILE:L:C): MSG"
// for fail and required; other errors as Go reports them.
func execError(err error) error {
	var ee template.ExecError
	if !errors.As(err, &ee) {
		return err
	}
	tokens := strings.SplitN(err.Error(), ": ", 3)
	if len(tokens) == 3 {
		if m := warnRe.FindStringSubmatch(tokens[2]); m != nil {
			return fmt.Errorf("execution error at (%s): %s", tokens[1], m[1])
		}
	}
	return err
}

// Helm's install order: the order `helm template` prints kinds in.
var installOrder = []string{
	"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList",
	"ConfigMap", "StorageClass", "PersistentVolume", "PersistentVolumeClaim",
	"CustomResourceDefinition", "ClusterRole", "ClusterRoleList", "ClusterRoleBinding",
	"ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList", "Service",
	"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress",
	"APIService",
}

type manifest struct {
	source string
	order  int
	kind   string
	body   string
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*(#.*)?$`)

type scope struct {
	values map[string]interface{}
	chart  *chart
}

func run(o *options) error {
	top, err := loadChart(o.chartDir, "")
	if err != nil {
		return err
	}
	vals := map[string]interface{}{}
	for _, f := range o.valueFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		m, err := parseYAMLMap(b)
		if err != nil {
			return fmt.Errorf("%s: %v", f, err)
		}
		mergeInto(vals, m)
	}
	for _, s := range o.sets {
		if err := applySet(vals, s, false); err != nil {
			return err
		}
	}
	for _, s := range o.setStrings {
		if err := applySet(vals, s, true); err != nil {
			return err
		}
	}
	coalesceTree(top, vals)

	// Every chart of the tree with the values it sees.
	var scopes []scope
	var walk func(c *chart, v map[string]interface{}, path string)
	type dumped struct {
		Chart  string                 `json:"chart"`
		Path   string                 `json:"path"`
		Schema string                 `json:"schema"`
		Values map[string]interface{} `json:"values"`
	}
	var dumps []dumped
	walk = func(c *chart, v map[string]interface{}, path string) {
		scopes = append(scopes, scope{v, c})
		if c.schema != "" {
			dumps = append(dumps, dumped{c.name, path, c.schema, v})
		}
		for _, d := range c.deps {
			sub, _ := v[d.name].(map[string]interface{})
			walk(d, sub, strings.TrimPrefix(path+"."+d.name, "."))
		}
	}
	walk(top, vals, "")
	if o.dumpValues {
		b, err := json.MarshalIndent(dumps, "", "  ")
		if err != nil {
			return err
		}
		fmt.Println(string(b))
		return nil
	}

	kv, err := semver.NewVersion(o.kubeVersion)
	if err != nil {
		return fmt.Errorf("--kube-version %q: %v", o.kubeVersion, err)
	}
	for _, s := range scopes {
		if req, _ := s.chart.meta["kubeVersion"].(string); req != "" {
			c, err := semver.NewConstraint(req)
			if err != nil {
				return fmt.Errorf("chart %s: kubeVersion %q: %v", s.chart.name, req, err)
			}
			if !c.Check(kv) {
				return fmt.Errorf("chart requires kubeVersion: %s which is incompatible with Kubernetes %s", req, o.kubeVersion)
			}
		}
	}
	caps := map[string]interface{}{
		"KubeVersion": kubeVersion{
			Version: "v" + kv.String(), Major: strconv.FormatUint(kv.Major(), 10),
			Minor: strconv.FormatUint(kv.Minor(), 10), GitVersion: "v" + kv.String(),
		},
		"APIVersions": apiVersions(append(append([]string{}, defaultAPIVersions...), o.apiVersions...)),
		"HelmVersion": map[string]interface{}{"Version": "v3.14.0"},
	}
	release := map[string]interface{}{
		"Name": o.release, "Namespace": o.namespace, "Service": "Helm",
		"IsInstall": true, "IsUpgrade": false, "Revision": 1,
	}

	e := &engine{depth: map[string]int{}}
	e.t = template.New("gotpl").Option("missingkey=zero")
	e.t.Funcs(e.funcs())
	type job struct {
		file tplFile
		data map[string]interface{}
	}
	var jobs []job
	var notes *job
	for _, s := range scopes {
		for _, f := range s.chart.templates {
			if _, err := e.t.New(f.name).Parse(f.data); err != nil {
				return fmt.Errorf("parse error in %v", err)
			}
			data := map[string]interface{}{
				"Values": s.values, "Release": release, "Chart": chartObject(s.chart.meta),
				"Capabilities": caps,
				"Template":     map[string]interface{}{"Name": f.name, "BasePath": s.chart.prefix + "/templates"},
			}
			base := filepath.Base(f.name)
			switch {
			case base == "NOTES.txt":
				if s.chart == top {
					notes = &job{f, data}
				}
			case strings.HasPrefix(base, "_"):
			default:
				jobs = append(jobs, job{f, data})
			}
		}
	}
	render := func(j job) (string, error) {
		var b bytes.Buffer
		if err := e.t.ExecuteTemplate(&b, j.file.name, j.data); err != nil {
			return "", execError(err)
		}
		return strings.ReplaceAll(b.String(), "<no value>", ""), nil
	}

	if o.notes {
		if notes == nil {
			return nil
		}
		out, err := render(*notes)
		if err != nil {
			return err
		}
		fmt.Println(strings.TrimSpace(out))
		return nil
	}

	sort.SliceStable(jobs, func(a, b int) bool { return jobs[a].file.name < jobs[b].file.name })
	var ms []manifest
	for _, j := range jobs {
		out, err := render(j)
		if err != nil {
			return err
		}
		for i, doc := range docSep.Split(out, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct {
				Kind string `yaml:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				return fmt.Errorf("YAML parse error on %s: %v", j.file.name, err)
			}
			ms = append(ms, manifest{j.file.name, i, head.Kind, strings.Trim(doc, "\n")})
		}
	}
	rank := func(kind string) int {
		for i, k := range installOrder {
			if k == kind {
				return i
			}
		}
		return len(installOrder)
	}
	sort.SliceStable(ms, func(a, b int) bool { return rank(ms[a].kind) < rank(ms[b].kind) })
	shown := 0
	for _, m := range ms {
		if len(o.showOnly) > 0 {
			keep := false
			for _, s := range o.showOnly {
				keep = keep || strings.HasSuffix(m.source, "/"+strings.TrimPrefix(s, "/"))
			}
			if !keep {
				continue
			}
		}
		shown++
		fmt.Printf("---\n# Source: %s\n%s\n", m.source, m.body)
	}
	if len(o.showOnly) > 0 && shown == 0 {
		return fmt.Errorf("could not find template(s) %s in chart", strings.Join(o.showOnly, ", "))
	}
	return nil
}

func main() {
	o, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n\n%s", err, usage)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "Error: %v\n", err)
		os.Exit(1)
	}
}
