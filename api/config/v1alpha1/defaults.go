package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
)

// DefaultDiscoveryPowerWatts is the power assumed per discovered GPU when none is configured.
const DefaultDiscoveryPowerWatts = 700

// SetDefaults fills in unset fields.
func SetDefaults(c *Configuration) {
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.Kind == "" {
		c.Kind = Kind
	}
	if c.DefaultQueueName == "" {
		c.DefaultQueueName = DefaultQueueName
	}
	if c.PodPolicy.PodSecurityLevel == "" {
		c.PodPolicy.PodSecurityLevel = PodSecurityRestricted
	}
	for i := range c.Filesystems {
		fs := &c.Filesystems[i]
		if fs.OperatorMountPath == "" && fs.HostPath != nil {
			fs.OperatorMountPath = fs.HostPath.Root
		}
		if fs.CSI != nil && fs.CSI.PathCharacters == "" {
			fs.CSI.PathCharacters = DefaultPathCharacters
		}
	}
	v := &c.Verification
	if v.RunAsUser == nil {
		v.RunAsUser = int64Ptr(DefaultVerificationUID)
	}
	if v.RunAsGroup == nil {
		v.RunAsGroup = int64Ptr(DefaultVerificationUID)
	}
	if v.DeadlineSeconds == nil {
		v.DeadlineSeconds = int64Ptr(DefaultVerificationDeadlineSeconds)
	}
	if c.Discovery.DefaultPowerWatts == 0 {
		c.Discovery.DefaultPowerWatts = DefaultDiscoveryPowerWatts
	}
	for i := range c.GPUClasses {
		g := &c.GPUClasses[i]
		if g.Resource == "" {
			g.Resource = DefaultGPUResource
		}
		if g.Tolerations == nil {
			g.Tolerations = []corev1.Toleration{DefaultGPUToleration()}
		}
	}
}

func int64Ptr(v int64) *int64 { return &v }

// DefaultGPUToleration tolerates the taint that GPU nodes usually carry.
func DefaultGPUToleration() corev1.Toleration {
	return corev1.Toleration{Key: DefaultGPUTaintKey, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
}
