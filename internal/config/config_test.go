package config

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
)

func TestLoadShippedConfiguration(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	file := filepath.Join(filepath.Dir(self), "..", "..", "config", "manager", "configuration.yaml")
	c, err := Load(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Filesystems) != 2 || len(c.GPUClasses) != 2 || c.DefaultQueueName != "default" {
		t.Fatalf("unexpected configuration: %+v", c)
	}
	mig := c.GPUClasses[1]
	if mig.Resource != "nvidia.com/mig-1g.10gb" || len(mig.Tolerations) != 1 || mig.Tolerations[0].Key != configv1.DefaultGPUTaintKey {
		t.Fatalf("MIG class not defaulted as expected: %+v", mig)
	}
}

func TestDecodeDefaults(t *testing.T) {
	c, err := Decode([]byte(`
apiVersion: config.aifactory.eu/v1alpha1
kind: Configuration
gpuClasses:
- name: h100-80gb
  nodeLabels: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
`))
	if err != nil {
		t.Fatal(err)
	}
	g := c.GPUClasses[0]
	if c.DefaultQueueName != "default" || g.Resource != configv1.DefaultGPUResource || len(g.Tolerations) != 1 ||
		c.Discovery.DefaultPowerWatts != configv1.DefaultDiscoveryPowerWatts {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestDecodeRejects(t *testing.T) {
	const head = "apiVersion: config.aifactory.eu/v1alpha1\nkind: Configuration\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown field", head + "filesystem: []\n", `unknown field "filesystem"`},
		{"wrong kind", "apiVersion: config.aifactory.eu/v1alpha1\nkind: Config\n", "kind: Unsupported value"},
		{"wrong apiVersion", "apiVersion: v1\nkind: Configuration\n", "apiVersion: Unsupported value"},
		{"filesystem without source", head + "filesystems: [{name: fs}]\n", "filesystems[0]: Required value"},
		{"filesystem with two sources", head + "filesystems: [{name: fs, hostPath: {root: /a}, csi: {driver: d, volumeHandle: h}}]\n",
			"filesystems[0]: Forbidden"},
		{"CSI without driver", head + "filesystems: [{name: fs, csi: {volumeHandle: h}}]\n", "filesystems[0].csi.driver: Required value"},
		{"CSI without handle", head + "filesystems: [{name: fs, csi: {driver: d}}]\n", "filesystems[0].csi.volumeHandle: Required value"},
		{"relative hostPath root", head + "filesystems: [{name: fs, hostPath: {root: lustre}}]\n", "filesystems[0].hostPath.root: Invalid value"},
		{"unclean hostPath root", head + "filesystems: [{name: fs, hostPath: {root: /lustre/../etc}}]\n", "filesystems[0].hostPath.root: Invalid value"},
		{"duplicate filesystem", head + "filesystems: [{name: fs, hostPath: {root: /a}}, {name: fs, hostPath: {root: /b}}]\n",
			"filesystems[1].name: Duplicate value"},
		{"filesystem name not a DNS label", head + "filesystems: [{name: Lustre_FS, hostPath: {root: /a}}]\n", "filesystems[0].name: Invalid value"},
		{"GPU class without node labels", head + "gpuClasses: [{name: h100}]\n", "gpuClasses[0].nodeLabels: Required value"},
		{"GPU class with a core resource", head + "gpuClasses: [{name: h100, resource: cpu, nodeLabels: {a: b}}]\n",
			"gpuClasses[0].resource: Invalid value"},
		{"GPU class with a bad label value", head + "gpuClasses: [{name: h100, nodeLabels: {a: 'b c'}}]\n",
			"gpuClasses[0].nodeLabels[a]: Invalid value"},
		{"negative power", head + "gpuClasses: [{name: h100, nodeLabels: {a: b}, powerWatts: -1}]\n", "gpuClasses[0].powerWatts: Invalid value"},
		{"bad default queue", head + "defaultQueueName: Default_Q\n", "defaultQueueName: Invalid value"},
		{"unknown Pod Security level", head + "podPolicy: {podSecurityLevel: open}\n", "podPolicy.podSecurityLevel: Unsupported value"},
		{"a capability restricted refuses", head + "podPolicy: {allowedCapabilities: [IPC_LOCK]}\n",
			"podPolicy.allowedCapabilities[0]: Forbidden: IPC_LOCK does not pass Pod Security restricted"},
		{"a capability baseline refuses", head + "podPolicy: {podSecurityLevel: baseline, allowedCapabilities: [CHOWN, SYS_ADMIN]}\n",
			"podPolicy.allowedCapabilities[1]: Forbidden"},
		{"a capability spelled with CAP_", head + "podPolicy: {podSecurityLevel: privileged, allowedCapabilities: [CAP_IPC_LOCK]}\n",
			"podPolicy.allowedCapabilities[0]: Invalid value"},
		{"a service account that is no name", head + "podPolicy: {serviceAccounts: [Trainer]}\n", "podPolicy.serviceAccounts[0]: Invalid value"},
		{"CSI without the operator's mount", head + "filesystems: [{name: fs, csi: {driver: d, volumeHandle: 'h{path}'}}]\n",
			"filesystems[0].operatorMountPath: Required value"},
		{"relative operator mount", head + "filesystems: [{name: fs, operatorMountPath: mnt, csi: {driver: d, volumeHandle: h}}]\n",
			"filesystems[0].operatorMountPath: Invalid value"},
		{"a control character allowed in paths", head + "filesystems: [{name: fs, operatorMountPath: /m, csi: {driver: d, volumeHandle: h, pathCharacters: \"\\t\"}}]\n",
			"filesystems[0].csi.pathCharacters: Invalid value"},
		{"verification as root", head + "verification: {runAsUser: 0}\n", "verification.runAsUser: Invalid value"},
		{"verification without a deadline", head + "verification: {deadlineSeconds: 0}\n", "verification.deadlineSeconds: Invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}
