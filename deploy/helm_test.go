package deploy

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/intelliauth/controlplane/workflows"
)

// The chart (deploy/helm/intelliauth-controlplane) is linted and rendered
// by the real Helm CLI, which deploy/helm/scripts/helm.sh installs once
// from the Go module proxy into the user cache; every rendered document is
// decoded strictly into its Kubernetes type and checked for what
// production depends on. No cluster is needed.
const chartDir = "helm/intelliauth-controlplane"

var (
	helmOnce sync.Once
	helmPath string
	helmErr  error
)

// helmCLI is the path of the cached Helm CLI, installed on first use.
func helmCLI(t *testing.T) string {
	t.Helper()
	helmOnce.Do(func() {
		var stderr bytes.Buffer
		cmd := exec.Command("bash", "helm/scripts/helm.sh")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmErr = fmt.Errorf("helm/scripts/helm.sh: %v\n%s", err, stderr.String())
			return
		}
		helmPath = strings.TrimSpace(string(out))
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	return helmPath
}

// valuesFiles are the example values files, each a shape the chart must
// render: at least the minimal, the production and the Temporal Cloud one.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("helm/values-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"helm/values-minimal.yaml", "helm/values-production.yaml", "helm/values-temporal-cloud.yaml"} {
		if !slices.Contains(files, want) {
			t.Fatalf("%s is missing (have %v)", want, files)
		}
	}
	return files
}

func TestTheHelmChartLintsStrictlyWithEveryValuesFile(t *testing.T) {
	helm := helmCLI(t)
	for _, file := range valuesFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			out, err := exec.Command(helm, "lint", "--strict", chartDir, "-f", file).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint --strict -f %s: %v\n%s", file, err, out)
			}
		})
	}
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// chart writes; anything else it writes is an unknown field.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// manifests is one rendering of the chart, by kind.
type manifests struct {
	raw             string
	deployments     []*appsv1.Deployment
	jobs            []*batchv1.Job
	services        []*corev1.Service
	serviceAccounts []*corev1.ServiceAccount
	secrets         []*corev1.Secret
	configMaps      []*corev1.ConfigMap
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []*networkingv1.NetworkPolicy
	ingresses       []*networkingv1.Ingress
	serviceMonitors []*serviceMonitor
}

const releaseNamespace = "controlplane"

// helmTemplate runs `helm template` with the arguments after the chart.
func helmTemplate(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(helmCLI(t), append([]string{"template", "cp", chartDir, "--namespace", releaseNamespace}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, stderr.String())
	}
	return string(out), nil
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// render renders the chart with a values file and decodes every document
// strictly (an unknown field, a duplicate key or an unknown kind fails).
func render(t *testing.T, valuesFile string) manifests {
	t.Helper()
	out, err := helmTemplate(t, "-f", valuesFile)
	if err != nil {
		t.Fatalf("helm template -f %s: %v", valuesFile, err)
	}
	m := manifests{raw: out}
	for i, doc := range docSep.Split(out, -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(doc, "")) == "" {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			m.deployments, obj = append(m.deployments, o), o
		case "batch/v1 Job":
			o := &batchv1.Job{}
			m.jobs, obj = append(m.jobs, o), o
		case "v1 Service":
			o := &corev1.Service{}
			m.services, obj = append(m.services, o), o
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			m.serviceAccounts, obj = append(m.serviceAccounts, o), o
		case "v1 Secret":
			o := &corev1.Secret{}
			m.secrets, obj = append(m.secrets, o), o
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			m.configMaps, obj = append(m.configMaps, o), o
		case "autoscaling/v2 HorizontalPodAutoscaler":
			o := &autoscalingv2.HorizontalPodAutoscaler{}
			m.hpas, obj = append(m.hpas, o), o
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			m.pdbs, obj = append(m.pdbs, o), o
		case "networking.k8s.io/v1 NetworkPolicy":
			o := &networkingv1.NetworkPolicy{}
			m.netpols, obj = append(m.netpols, o), o
		case "networking.k8s.io/v1 Ingress":
			o := &networkingv1.Ingress{}
			m.ingresses, obj = append(m.ingresses, o), o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &serviceMonitor{}
			m.serviceMonitors, obj = append(m.serviceMonitors, o), o
		default:
			t.Fatalf("document %d: a kind this test does not know, %s %s: decode and check it here\n%s", i, meta.APIVersion, meta.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): %v\n%s", i, meta.Kind, err, doc)
		}
	}
	return m
}

// values is what a values file says, merged over the chart's defaults as
// far as these checks read them.
type values struct {
	ExistingSecret string `json:"existingSecret"`
	Regions        []struct {
		Name           string `json:"name"`
		ExistingSecret string `json:"existingSecret"`
		Postgres       struct {
			Port int                              `json:"port"`
			To   []networkingv1.NetworkPolicyPeer `json:"to"`
		} `json:"postgres"`
	} `json:"regions"`
	Temporal struct {
		TLS struct {
			ExistingSecret string `json:"existingSecret"`
		} `json:"tls"`
		APIKey struct {
			ExistingSecret string `json:"existingSecret"`
		} `json:"apiKey"`
	} `json:"temporal"`
	OperatorGateway struct {
		ExistingSecret string `json:"existingSecret"`
	} `json:"operatorGateway"`
	NetworkPolicy struct {
		Enabled  bool `json:"enabled"`
		Postgres struct {
			To []networkingv1.NetworkPolicyPeer `json:"to"`
		} `json:"postgres"`
	} `json:"networkPolicy"`
}

func readValues(t *testing.T, file string) values {
	t.Helper()
	var v values
	if err := yaml.Unmarshal([]byte(read(t, file)), &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// pod is a workload's pod template, named for messages.
type pod struct {
	name      string
	component string
	labels    map[string]string
	spec      corev1.PodSpec
}

func (m manifests) pods() []pod {
	var ps []pod
	for _, d := range m.deployments {
		ps = append(ps, pod{"Deployment " + d.Name, d.Spec.Template.Labels["app.kubernetes.io/component"], d.Spec.Template.Labels, d.Spec.Template.Spec})
	}
	for _, j := range m.jobs {
		ps = append(ps, pod{"Job " + j.Name, j.Spec.Template.Labels["app.kubernetes.io/component"], j.Spec.Template.Labels, j.Spec.Template.Spec})
	}
	return ps
}

func (m manifests) deployment(t *testing.T, component string) *appsv1.Deployment {
	t.Helper()
	for _, d := range m.deployments {
		if d.Spec.Template.Labels["app.kubernetes.io/component"] == component {
			return d
		}
	}
	t.Fatalf("no Deployment of component %q", component)
	return nil
}

func envOf(c corev1.Container, name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// portOf is the port of a host:port setting.
func portOf(t *testing.T, addr string) int32 {
	t.Helper()
	i := strings.LastIndex(addr, ":")
	p, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("%q is not host:port", addr)
	}
	return int32(p)
}

// containerPort resolves a probe's named or numbered port.
func containerPort(t *testing.T, c corev1.Container, p corev1.Probe) int32 {
	t.Helper()
	if p.HTTPGet == nil {
		t.Fatalf("container %s: probe is not an HTTP GET: %+v", c.Name, p)
	}
	if p.HTTPGet.Port.StrVal == "" {
		return p.HTTPGet.Port.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.HTTPGet.Port.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s: probe port %q is not one of its ports", c.Name, p.HTTPGet.Port.StrVal)
	return 0
}

// shutdownGrace is how long the API drains after SIGTERM, as
// cmd/controlplane/serve.go says.
func shutdownGrace(t *testing.T) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`(?m)^const shutdownGrace = (\d+) \* time\.Second$`).FindStringSubmatch(read(t, "../cmd/controlplane/serve.go"))
	if m == nil {
		t.Fatal("cmd/controlplane/serve.go has no `const shutdownGrace = N * time.Second`")
	}
	n, _ := strconv.Atoi(m[1])
	return time.Duration(n) * time.Second
}

// secretSettings are the CP_* settings that hold secrets: the chart may set
// only their _FILE forms.
var secretSettings = []string{"CP_DATABASE_URL", "CP_REGION_DATABASE_URL", "CP_KEY_ENCRYPTION_KEYS", "CP_CODEC_TOKEN",
	"CP_SMTP_PASSWORD", "CP_TEMPORAL_API_KEY", "CP_TEMPORAL_TLS_KEY", "CP_OPERATOR_TLS_KEY", "CP_STRIPE_SECRET_KEY",
	"CP_STRIPE_WEBHOOK_SECRET", "CP_BOOTSTRAP_OWNER_PASSWORD"}

func TestTheHelmChartRendersWhatProductionNeeds(t *testing.T) {
	configSource := read(t, "../internal/config/config.go")
	drain := shutdownGrace(t)
	for _, file := range valuesFiles(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			v := readValues(t, file)
			m := render(t, file)
			if len(m.deployments) < 2 || len(m.jobs) == 0 {
				t.Fatalf("rendered %d Deployments and %d Jobs", len(m.deployments), len(m.jobs))
			}
			checkRestricted(t, m)
			checkSettings(t, m, configSource)
			checkNoSecretInline(t, m)
			checkProbesAndGrace(t, m, drain)
			checkRegions(t, m, v)
			checkHooks(t, m)
			checkSelectors(t, m)
			if v.NetworkPolicy.Enabled {
				checkNetworkPolicies(t, m, v)
			}
		})
	}
}

// checkRestricted: every pod meets the restricted Pod Security Standard, and
// every container has requests and limits.
func checkRestricted(t *testing.T, m manifests) {
	t.Helper()
	for _, sa := range m.serviceAccounts {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts its token", sa.Name)
		}
	}
	for _, p := range m.pods() {
		ps := p.spec.SecurityContext
		if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: the pod's securityContext is not non-root with seccomp RuntimeDefault: %+v", p.name, ps)
		}
		if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s: mounts a service account token", p.name)
		}
		if p.spec.HostNetwork || p.spec.HostPID || p.spec.HostIPC {
			t.Errorf("%s: shares a host namespace", p.name)
		}
		tmp := map[string]bool{}
		for _, vol := range p.spec.Volumes {
			if vol.EmptyDir != nil {
				tmp[vol.Name] = true
			}
			if vol.HostPath != nil {
				t.Errorf("%s: volume %s is a hostPath", p.name, vol.Name)
			}
		}
		for _, c := range append(slices.Clone(p.spec.InitContainers), p.spec.Containers...) {
			where := p.name + " container " + c.Name
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) {
				t.Errorf("%s: may run as root", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: writable root file system", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || (sc.Privileged != nil && *sc.Privileged) {
				t.Errorf("%s: privilege escalation allowed", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities not dropped to none: %+v", where, sc.Capabilities)
			}
			if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccomp profile is not RuntimeDefault", where)
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
				if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
					t.Errorf("%s: %s request %s and limit %s (both set, request <= limit)", where, r, req.String(), lim.String())
				}
			}
			// The only writable place: /tmp, an emptyDir, where CP_DATA_DIR is.
			tmpMounted := false
			for _, vm := range c.VolumeMounts {
				if vm.MountPath == "/tmp" && tmp[vm.Name] {
					tmpMounted = true
				}
				if !vm.ReadOnly && vm.MountPath != "/tmp" {
					t.Errorf("%s: %s is mounted writable", where, vm.MountPath)
				}
			}
			dataDir, _ := envOf(c, "CP_DATA_DIR")
			if !tmpMounted || !strings.HasPrefix(dataDir, "/tmp/") {
				t.Errorf("%s: /tmp is not an emptyDir (mounted %v) or CP_DATA_DIR %q is not under it", where, tmpMounted, dataDir)
			}
		}
	}
}

// checkSettings: every CP_* the chart sets is one the binary reads.
func checkSettings(t *testing.T, m manifests, configSource string) {
	t.Helper()
	for _, p := range m.pods() {
		for _, c := range p.spec.Containers {
			for _, e := range c.Env {
				name := strings.TrimSuffix(e.Name, "_FILE")
				if !strings.HasPrefix(name, "CP_") {
					t.Errorf("%s: %s is not a CP_* setting", p.name, e.Name)
				}
				if !strings.Contains(configSource, `"`+name+`"`) {
					t.Errorf("%s: %s is not read by internal/config", p.name, e.Name)
				}
			}
		}
	}
}

// checkNoSecretInline: the chart makes no Secret and writes no secret's
// value; every secret comes from a file that a mounted Secret projects.
func checkNoSecretInline(t *testing.T, m manifests) {
	t.Helper()
	if len(m.secrets) > 0 || len(m.configMaps) > 0 {
		t.Errorf("the chart renders %d Secrets and %d ConfigMaps: secrets come from existingSecret only", len(m.secrets), len(m.configMaps))
	}
	for _, s := range []string{"postgres://", "postgresql://", "-----BEGIN", "sk_live_", "sk_test_", "whsec_"} {
		if strings.Contains(m.raw, s) {
			t.Errorf("the rendered chart contains %q", s)
		}
	}
	for _, p := range m.pods() {
		// What each mounted Secret volume projects, by path.
		files := map[string]string{} // path -> Secret/key
		for _, c := range p.spec.Containers {
			for _, vm := range c.VolumeMounts {
				for _, vol := range p.spec.Volumes {
					if vol.Name != vm.Name || vol.Secret == nil {
						continue
					}
					if vol.Secret.DefaultMode == nil || *vol.Secret.DefaultMode&0o007 != 0 {
						t.Errorf("%s: Secret volume %s is readable by others", p.name, vol.Name)
					}
					for _, it := range vol.Secret.Items {
						files[filepath.Join(vm.MountPath, it.Path)] = vol.Secret.SecretName + "/" + it.Key
					}
				}
			}
		}
		for _, c := range p.spec.Containers {
			if len(c.EnvFrom) > 0 {
				t.Errorf("%s: envFrom", p.name)
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil {
					t.Errorf("%s: %s comes from valueFrom: secrets are files", p.name, e.Name)
				}
				if slices.Contains(secretSettings, e.Name) {
					t.Errorf("%s: the secret %s is set inline; only %s_FILE may be", p.name, e.Name, e.Name)
				}
				if strings.HasSuffix(e.Name, "_FILE") {
					if _, ok := files[e.Value]; !ok {
						t.Errorf("%s: %s=%s is no file a mounted Secret projects (%v)", p.name, e.Name, e.Value, files)
					}
				}
			}
		}
	}
}

// checkProbesAndGrace: the api is ready on /readyz of its HTTP port and
// alive on /healthz of its metrics listener; workers alive on the latter;
// each gets the time its drain needs.
func checkProbesAndGrace(t *testing.T, m manifests, drain time.Duration) {
	t.Helper()
	for _, d := range m.deployments {
		c := d.Spec.Template.Spec.Containers[0]
		where := "Deployment " + d.Name
		metricsAddr, ok := envOf(c, "CP_METRICS_ADDR")
		if !ok {
			t.Errorf("%s: no CP_METRICS_ADDR", where)
			continue
		}
		for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe} {
			if p == nil {
				t.Errorf("%s: no %s probe", where, name)
				continue
			}
			if p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || containerPort(t, c, *p) != portOf(t, metricsAddr) {
				t.Errorf("%s: %s probe is not /healthz on the metrics listener (%s): %+v", where, name, metricsAddr, p.HTTPGet)
			}
		}
		if c.ReadinessProbe == nil {
			t.Errorf("%s: no readiness probe", where)
			continue
		}
		grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
		switch comp := d.Spec.Template.Labels["app.kubernetes.io/component"]; {
		case comp == "api":
			httpAddr, _ := envOf(c, "CP_HTTP_ADDR")
			if c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || containerPort(t, c, *c.ReadinessProbe) != portOf(t, httpAddr) {
				t.Errorf("%s: readiness is not /readyz on the API's port (%s): %+v", where, httpAddr, c.ReadinessProbe.HTTPGet)
			}
			var sleep time.Duration
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
				sleep = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			}
			if grace != 20*time.Second || grace < sleep+drain+time.Second {
				t.Errorf("%s: terminationGracePeriodSeconds %v, want 20s, covering preStop's %v and the %v drain", where, grace, sleep, drain)
			}
		case comp == "worker" || strings.HasPrefix(comp, "worker-"):
			if grace != 130*time.Second || grace < workflows.StepTimeout+5*time.Second {
				t.Errorf("%s: terminationGracePeriodSeconds %v, want 2m10s, the step timeout (%v) and a margin", where, grace, workflows.StepTimeout)
			}
		default:
			t.Errorf("%s: unknown component %q", where, comp)
		}
	}
}

// checkRegions: each region's worker runs `worker --region <name>` with its
// own region's database and nothing else; the api and the control plane's
// worker name every region in CP_REGIONS.
func checkRegions(t *testing.T, m manifests, v values) {
	t.Helper()
	regionSecrets := map[string]string{} // Secret -> region
	var names []string
	for _, r := range v.Regions {
		regionSecrets[r.ExistingSecret] = r.Name
		names = append(names, r.Name)
	}
	for _, comp := range []string{"api", "worker"} {
		got, ok := envOf(m.deployment(t, comp).Spec.Template.Spec.Containers[0], "CP_REGIONS")
		if want := strings.Join(names, ","); ok != (len(names) > 0) || got != want {
			t.Errorf("%s: CP_REGIONS = %q (set %v), want %q", comp, got, ok, want)
		}
	}
	for _, p := range m.pods() {
		region := strings.TrimPrefix(p.component, "worker-")
		isRegion := region != p.component
		if isRegion && !slices.Contains(names, region) {
			t.Errorf("%s: worker of an unknown region %q", p.name, region)
		}
		for _, vol := range p.spec.Volumes {
			if vol.Secret == nil {
				continue
			}
			if owner, ok := regionSecrets[vol.Secret.SecretName]; ok && owner != region {
				t.Errorf("%s: mounts region %s's Secret %s", p.name, owner, vol.Secret.SecretName)
			}
			if isRegion {
				switch vol.Secret.SecretName {
				case v.Temporal.TLS.ExistingSecret, v.Temporal.APIKey.ExistingSecret:
				default:
					if _, ok := regionSecrets[vol.Secret.SecretName]; ok {
						break
					}
					// The control plane's Secret: its key ring, nothing else.
					for _, it := range vol.Secret.Items {
						if it.Key != "key-encryption-keys" {
							t.Errorf("%s: projects %s of Secret %s", p.name, it.Key, vol.Secret.SecretName)
						}
					}
					if len(vol.Secret.Items) == 0 {
						t.Errorf("%s: mounts the whole Secret %s", p.name, vol.Secret.SecretName)
					}
				}
			}
		}
		if !isRegion {
			continue
		}
		c := p.spec.Containers[0]
		if want := []string{"worker", "--region", region}; !reflect.DeepEqual(c.Args, want) {
			t.Errorf("%s: args %q, want %q", p.name, c.Args, want)
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "CP_DATABASE_URL") {
				t.Errorf("%s: has %s", p.name, e.Name)
			}
		}
		file, ok := envOf(c, "CP_REGION_DATABASE_URL_FILE")
		if !ok {
			t.Errorf("%s: no CP_REGION_DATABASE_URL_FILE", p.name)
			continue
		}
		var secret string
		for _, r := range v.Regions {
			if r.Name == region {
				secret = r.ExistingSecret
			}
		}
		found := false
		for _, vm := range c.VolumeMounts {
			for _, vol := range p.spec.Volumes {
				if vol.Name == vm.Name && vol.Secret != nil && vol.Secret.SecretName == secret {
					for _, it := range vol.Secret.Items {
						found = found || (filepath.Join(vm.MountPath, it.Path) == file && it.Key == "database-url")
					}
				}
			}
		}
		if !found {
			t.Errorf("%s: CP_REGION_DATABASE_URL_FILE %s is not the database-url of Secret %s", p.name, file, secret)
		}
	}
	if got, want := len(m.deployments), 2+len(v.Regions); got != want {
		t.Errorf("%d Deployments, want api, worker and one per region: %d", got, want)
	}
}

// hookWeight is a hook's weight, and whether it runs before install and
// upgrade and is deleted before it is made again and once it succeeded.
func hookWeight(t *testing.T, kind, name string, annotations map[string]string) int {
	t.Helper()
	hooks := strings.Split(annotations["helm.sh/hook"], ",")
	policy := strings.Split(annotations["helm.sh/hook-delete-policy"], ",")
	if !slices.Contains(hooks, "pre-install") || !slices.Contains(hooks, "pre-upgrade") ||
		!slices.Contains(policy, "before-hook-creation") || !slices.Contains(policy, "hook-succeeded") {
		t.Errorf("%s %s: hook %q, delete policy %q", kind, name, hooks, policy)
	}
	w, err := strconv.Atoi(annotations["helm.sh/hook-weight"])
	if err != nil {
		t.Errorf("%s %s: hook weight %q", kind, name, annotations["helm.sh/hook-weight"])
	}
	return w
}

// checkHooks: migrate, then setup, as hook Jobs; what they run under exists
// before them.
func checkHooks(t *testing.T, m manifests) {
	t.Helper()
	weights := map[string]int{}
	for _, j := range m.jobs {
		comp := j.Spec.Template.Labels["app.kubernetes.io/component"]
		weights[comp] = hookWeight(t, "Job", j.Name, j.Annotations)
		want := map[string][]string{"migrate": {"migrate", "up"}, "setup": {"setup"}}[comp]
		if got := j.Spec.Template.Spec.Containers[0].Args; want == nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Job %s: args %q, want %q", j.Name, got, want)
		}
		if j.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyNever || j.Spec.BackoffLimit == nil || j.Spec.ActiveDeadlineSeconds == nil {
			t.Errorf("Job %s: restartPolicy %s, backoffLimit and activeDeadlineSeconds must be set", j.Name, j.Spec.Template.Spec.RestartPolicy)
		}
		for _, sa := range m.serviceAccounts {
			if sa.Name == j.Spec.Template.Spec.ServiceAccountName && hookWeight(t, "ServiceAccount", sa.Name, sa.Annotations) >= weights[comp] {
				t.Errorf("Job %s runs as %s, which is not made before it", j.Name, sa.Name)
			}
		}
	}
	mw, okm := weights["migrate"]
	sw, oks := weights["setup"]
	if !okm || !oks || mw >= sw {
		t.Errorf("hook weights %v: want migrate, then setup", weights)
	}
}

// checkSelectors: Services, PDBs, HPA, spreads, the ServiceMonitor and the
// Ingress point at what exists.
func checkSelectors(t *testing.T, m manifests) {
	t.Helper()
	podsOf := func(sel map[string]string) []string {
		var names []string
		for _, d := range m.deployments {
			if labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels)) {
				names = append(names, d.Spec.Template.Labels["app.kubernetes.io/component"])
			}
		}
		return names
	}
	services := map[string]*corev1.Service{}
	for _, s := range m.services {
		services[s.Name] = s
		if len(podsOf(s.Spec.Selector)) == 0 {
			t.Errorf("Service %s selects no Deployment's pods", s.Name)
		}
	}
	var api *appsv1.Deployment
	for _, d := range m.deployments {
		comp := d.Spec.Template.Labels["app.kubernetes.io/component"]
		if comp == "api" {
			api = d
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("Deployment %s: selector does not match its pods", d.Name)
		}
		if len(d.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
			t.Errorf("Deployment %s: no topologySpreadConstraints", d.Name)
		}
		for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
			if s, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector); err != nil || !s.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("Deployment %s: spread over %s counts other pods", d.Name, tsc.TopologyKey)
			}
		}
		pdbs := 0
		for _, pdb := range m.pdbs {
			if s, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil && s.Matches(labels.Set(d.Spec.Template.Labels)) {
				pdbs++
			}
		}
		if pdbs != 1 {
			t.Errorf("Deployment %s: %d PodDisruptionBudgets, want 1", d.Name, pdbs)
		}
		metricsServed := false
		for _, s := range m.services {
			for _, p := range s.Spec.Ports {
				if p.Name == "metrics" && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
					metricsServed = true
				}
			}
		}
		if !metricsServed {
			t.Errorf("Deployment %s: no Service has its metrics port", d.Name)
		}
	}
	for _, h := range m.hpas {
		if api == nil || h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != api.Name ||
			h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas || len(h.Spec.Metrics) == 0 {
			t.Errorf("HorizontalPodAutoscaler %s: %+v", h.Name, h.Spec)
		}
		if api != nil && api.Spec.Replicas != nil {
			t.Errorf("Deployment %s sets replicas beside its autoscaler", api.Name)
		}
	}
	for _, sm := range m.serviceMonitors {
		n := 0
		for _, s := range m.services {
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			if err == nil && sel.Matches(labels.Set(s.Labels)) {
				n++
				for _, e := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) || e.Path != "/metrics" {
						t.Errorf("ServiceMonitor %s: endpoint %+v is not a port of Service %s", sm.Name, e, s.Name)
					}
				}
				if got := podsOf(s.Spec.Selector); len(got) != len(m.deployments) {
					t.Errorf("ServiceMonitor %s scrapes %v, not every Deployment", sm.Name, got)
				}
			}
		}
		if n != 1 || !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{releaseNamespace}) {
			t.Errorf("ServiceMonitor %s selects %d Services in %v", sm.Name, n, sm.Spec.NamespaceSelector.MatchNames)
		}
	}
	for _, ing := range m.ingresses {
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				s := services[p.Backend.Service.Name]
				if s == nil || api == nil || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(api.Spec.Template.Labels)) || p.Backend.Service.Port.Name != "http" {
					t.Errorf("Ingress %s: %s goes to %+v, not the api's http port", ing.Name, r.Host, p.Backend.Service)
				}
			}
		}
	}
}

// checkNetworkPolicies: every pod is isolated both ways by exactly one
// policy; the api takes its HTTP port, every server its metrics port from
// the monitoring namespace; egress is DNS, Postgres, Temporal (and for the
// control plane's pods, mail and HTTPS); a region's worker reaches its own
// region's database only.
func checkNetworkPolicies(t *testing.T, m manifests, v values) {
	t.Helper()
	ports := func(rules []networkingv1.NetworkPolicyPort) []int32 {
		var ps []int32
		for _, r := range rules {
			if r.Port != nil {
				ps = append(ps, r.Port.IntVal)
			}
		}
		return ps
	}
	for _, p := range m.pods() {
		var mine []*networkingv1.NetworkPolicy
		for _, np := range m.netpols {
			if s, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err == nil && s.Matches(labels.Set(p.labels)) {
				mine = append(mine, np)
			}
		}
		if len(mine) != 1 {
			t.Errorf("%s: %d NetworkPolicies select it, want 1", p.name, len(mine))
			continue
		}
		np := mine[0]
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			t.Errorf("%s: policy %s types %v", p.name, np.Name, np.Spec.PolicyTypes)
		}
		var in, out []int32
		for _, r := range np.Spec.Ingress {
			in = append(in, ports(r.Ports)...)
			if len(r.Ports) == 0 {
				t.Errorf("%s: an ingress rule of %s has no port", p.name, np.Name)
			}
		}
		for _, r := range np.Spec.Egress {
			out = append(out, ports(r.Ports)...)
			if len(r.Ports) == 0 {
				t.Errorf("%s: an egress rule of %s has no port", p.name, np.Name)
			}
		}
		if !slices.Contains(out, 53) {
			t.Errorf("%s: no DNS egress", p.name)
		}
		c := p.spec.Containers[0]
		if addr, ok := envOf(c, "CP_METRICS_ADDR"); ok {
			port := portOf(t, addr)
			ok := false
			for _, r := range np.Spec.Ingress {
				for _, f := range r.From {
					if f.NamespaceSelector != nil && f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "" && slices.Contains(ports(r.Ports), port) {
						ok = true
					}
				}
			}
			if !ok {
				t.Errorf("%s: the metrics port %d is not open to the monitoring namespace", p.name, port)
			}
		}
		if addr, ok := envOf(c, "CP_HTTP_ADDR"); ok && !slices.Contains(in, portOf(t, addr)) {
			t.Errorf("%s: the API's port is not open", p.name)
		}
		if p.component == "migrate" || p.component == "setup" {
			if len(in) != 0 {
				t.Errorf("%s: hook Job takes ingress on %v", p.name, in)
			}
		}
		region := strings.TrimPrefix(p.component, "worker-")
		if region == p.component {
			continue
		}
		// DNS, Temporal and the region's database: nothing else.
		if len(np.Spec.Egress) != 3 {
			t.Errorf("%s: %d egress rules, want DNS, Temporal and its database", p.name, len(np.Spec.Egress))
		}
		for _, r := range v.Regions {
			if r.Name != region {
				continue
			}
			found := false
			for _, e := range np.Spec.Egress {
				if reflect.DeepEqual(e.To, r.Postgres.To) {
					found = true
				}
				if len(v.NetworkPolicy.Postgres.To) > 0 && reflect.DeepEqual(e.To, v.NetworkPolicy.Postgres.To) {
					t.Errorf("%s: may reach the control plane's Postgres", p.name)
				}
			}
			if len(r.Postgres.To) == 0 || !found {
				t.Errorf("%s: no egress to its region's database %+v", p.name, r.Postgres.To)
			}
		}
	}
}

// TestTheHelmChartRefusesWhatCannotRun: values the binary or the cluster
// would refuse stop `helm install` with a message that says why.
func TestTheHelmChartRefusesWhatCannotRun(t *testing.T) {
	base := []string{"-f", "helm/values-minimal.yaml"}
	for name, c := range map[string]struct {
		set  []string
		want string
	}{
		"no mail relay":                  {[]string{"smtp.addr="}, "smtp.addr is required"},
		"a region without its Secret":    {[]string{"regions[0].name=eu"}, `regions: "eu" needs existingSecret`},
		"a region twice":                 {[]string{"regions[0].name=eu", "regions[0].existingSecret=a", "regions[1].name=eu", "regions[1].existingSecret=b"}, `"eu" is listed twice`},
		"a region that is no label":      {[]string{"regions[0].name=EU_West", "regions[0].existingSecret=a"}, "is not a DNS label"},
		"a certificate without TLS":      {[]string{"temporal.tls.existingSecret=t"}, "temporal.tls.enabled is false"},
		"a secret as a plain setting":    {[]string{"config.extraEnv.CP_DATABASE_URL=postgres://u:p@h/db"}, "CP_DATABASE_URL is a secret"},
		"a region reaching any database": {[]string{"regions[0].name=eu", "regions[0].existingSecret=a", "networkPolicy.enabled=true"}, `"eu" needs postgres.to`},
		"a gateway without its Secret":   {[]string{"operatorGateway.enabled=true"}, "operatorGateway.existingSecret is required"},
	} {
		t.Run(name, func(t *testing.T) {
			args := slices.Clone(base)
			for _, s := range c.set {
				args = append(args, "--set", s)
			}
			out, err := helmTemplate(t, args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("helm template %v: %v, want an error with %q\n%.2000s", c.set, err, c.want, out)
			}
		})
	}
}

// TestTheChartsValuesHoldNoSecret: the chart's defaults and examples name
// Secrets; none holds a credential (a URL with a user, a PEM block).
func TestTheChartsValuesHoldNoSecret(t *testing.T) {
	files := append(valuesFiles(t), chartDir+"/values.yaml")
	credential := regexp.MustCompile(`[a-z]+://[^\s/@]+@|-----BEGIN`)
	for _, f := range files {
		for i, line := range strings.Split(read(t, f), "\n") {
			if m := credential.FindString(line); m != "" && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				t.Errorf("%s:%d: %q looks like a credential", f, i+1, line)
			}
		}
	}
}
