// Package config reads the operator configuration file: it parses it strictly, fills in the defaults of the
// API package and validates the result, naming each offending field.
package config

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	configv1 "github.com/aifactory-eu/aifactory-operator/api/config/v1alpha1"
	"github.com/aifactory-eu/aifactory-operator/internal/safepath"
)

// Load reads, defaults and validates a configuration file. Unknown fields are errors.
func Load(file string) (*configv1.Configuration, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return Decode(data)
}

// Decode parses, defaults and validates a configuration. Unknown fields are errors.
func Decode(data []byte) (*configv1.Configuration, error) {
	c := &configv1.Configuration{}
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, fmt.Errorf("parsing configuration: %w", err)
	}
	configv1.SetDefaults(c)
	if errs := Validate(c); len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration: %w", errs.ToAggregate())
	}
	return c, nil
}

// Validate checks a defaulted configuration and names each offending field.
func Validate(c *configv1.Configuration) field.ErrorList {
	var errs field.ErrorList
	if c.APIVersion != configv1.APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{configv1.APIVersion}))
	}
	if c.Kind != configv1.Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{configv1.Kind}))
	}
	for _, msg := range validation.IsDNS1123Subdomain(c.DefaultQueueName) {
		errs = append(errs, field.Invalid(field.NewPath("defaultQueueName"), c.DefaultQueueName, msg))
	}
	seen := map[string]bool{}
	for i, fs := range c.Filesystems {
		p := field.NewPath("filesystems").Index(i)
		errs = append(errs, validateName(p.Child("name"), fs.Name, seen)...)
		errs = append(errs, validateFilesystem(p, fs)...)
	}
	seen = map[string]bool{}
	for i, g := range c.GPUClasses {
		p := field.NewPath("gpuClasses").Index(i)
		errs = append(errs, validateName(p.Child("name"), g.Name, seen)...)
		if !strings.Contains(string(g.Resource), "/") {
			errs = append(errs, field.Invalid(p.Child("resource"), g.Resource, "must be an extended resource such as nvidia.com/gpu"))
		}
		if len(g.NodeLabels) == 0 {
			errs = append(errs, field.Required(p.Child("nodeLabels"), "a GPU class must select its nodes"))
		}
		for k, v := range g.NodeLabels {
			for _, msg := range validation.IsQualifiedName(k) {
				errs = append(errs, field.Invalid(p.Child("nodeLabels").Key(k), k, msg))
			}
			for _, msg := range validation.IsValidLabelValue(v) {
				errs = append(errs, field.Invalid(p.Child("nodeLabels").Key(k), v, msg))
			}
		}
		if g.PowerWatts < 0 {
			errs = append(errs, field.Invalid(p.Child("powerWatts"), g.PowerWatts, "must not be negative"))
		}
	}
	if c.Discovery.DefaultPowerWatts < 0 {
		errs = append(errs, field.Invalid(field.NewPath("discovery", "defaultPowerWatts"), c.Discovery.DefaultPowerWatts, "must not be negative"))
	}
	errs = append(errs, validateVerification(field.NewPath("verification"), &c.Verification)...)
	return append(errs, validatePodPolicy(field.NewPath("podPolicy"), &c.PodPolicy)...)
}

func validateVerification(p *field.Path, v *configv1.Verification) field.ErrorList {
	var errs field.ErrorList
	for k, val := range v.NodeSelector {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p.Child("nodeSelector").Key(k), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(val) {
			errs = append(errs, field.Invalid(p.Child("nodeSelector").Key(k), val, msg))
		}
	}
	if v.RunAsUser != nil && *v.RunAsUser <= 0 {
		errs = append(errs, field.Invalid(p.Child("runAsUser"), *v.RunAsUser, "must be a user other than root"))
	}
	if v.RunAsGroup != nil && *v.RunAsGroup <= 0 {
		errs = append(errs, field.Invalid(p.Child("runAsGroup"), *v.RunAsGroup, "must be a group other than root"))
	}
	if v.DeadlineSeconds != nil && *v.DeadlineSeconds <= 0 {
		errs = append(errs, field.Invalid(p.Child("deadlineSeconds"), *v.DeadlineSeconds, "must be positive"))
	}
	return errs
}

// validatePodPolicy checks the level, and that every allowed capability passes Pod Security at that level, so
// that what the operator lets a TrainingJob add is never refused by the namespace afterwards.
func validatePodPolicy(p *field.Path, pp *configv1.PodPolicy) field.ErrorList {
	var errs field.ErrorList
	level := pp.PodSecurityLevel
	switch level {
	case configv1.PodSecurityRestricted, configv1.PodSecurityBaseline, configv1.PodSecurityPrivileged:
	default:
		errs = append(errs, field.NotSupported(p.Child("podSecurityLevel"), level, []string{configv1.PodSecurityRestricted, configv1.PodSecurityBaseline, configv1.PodSecurityPrivileged}))
	}
	for i, c := range pp.AllowedCapabilities {
		switch {
		case c == "" || strings.HasPrefix(c, "CAP_") || strings.ToUpper(c) != c:
			errs = append(errs, field.Invalid(p.Child("allowedCapabilities").Index(i), c, "must be a capability name in capitals without CAP_, such as IPC_LOCK"))
		case level == configv1.PodSecurityRestricted && c != "NET_BIND_SERVICE",
			level == configv1.PodSecurityBaseline && !slices.Contains(configv1.BaselineCapabilities, c):
			errs = append(errs, field.Forbidden(p.Child("allowedCapabilities").Index(i),
				fmt.Sprintf("%s does not pass Pod Security %s; set podSecurityLevel to one that allows it", c, level)))
		}
	}
	for i, n := range pp.ServiceAccounts {
		for _, msg := range validation.IsDNS1123Subdomain(n) {
			errs = append(errs, field.Invalid(p.Child("serviceAccounts").Index(i), n, msg))
		}
	}
	for i, n := range pp.StorageClasses {
		for _, msg := range validation.IsDNS1123Subdomain(n) {
			errs = append(errs, field.Invalid(p.Child("storageClasses").Index(i), n, msg))
		}
	}
	for i, n := range pp.RuntimeClasses {
		for _, msg := range validation.IsDNS1123Subdomain(n) {
			errs = append(errs, field.Invalid(p.Child("runtimeClasses").Index(i), n, msg))
		}
	}
	return errs
}

func validateName(p *field.Path, name string, seen map[string]bool) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Label(name) {
		errs = append(errs, field.Invalid(p, name, msg))
	}
	if seen[name] {
		errs = append(errs, field.Duplicate(p, name))
	}
	seen[name] = true
	return errs
}

func validateFilesystem(p *field.Path, fs configv1.Filesystem) field.ErrorList {
	var errs field.ErrorList
	switch {
	case fs.CSI == nil && fs.HostPath == nil:
		errs = append(errs, field.Required(p, "one of csi or hostPath must be set"))
	case fs.CSI != nil && fs.HostPath != nil:
		errs = append(errs, field.Forbidden(p, "csi and hostPath are mutually exclusive"))
	case fs.CSI != nil:
		if fs.CSI.Driver == "" {
			errs = append(errs, field.Required(p.Child("csi", "driver"), "the CSI driver name"))
		}
		if fs.CSI.VolumeHandle == "" {
			errs = append(errs, field.Required(p.Child("csi", "volumeHandle"), "may contain {path}"))
		}
		for _, r := range fs.CSI.PathCharacters {
			if r < 0x21 || r > 0x7e || r == '%' {
				errs = append(errs, field.Invalid(p.Child("csi", "pathCharacters"), fs.CSI.PathCharacters,
					fmt.Sprintf("%q is not allowed: only printable ASCII punctuation other than '%%'", r)))
			}
		}
	default:
		root := fs.HostPath.Root
		if !safepath.IsClean(root) {
			errs = append(errs, field.Invalid(p.Child("hostPath", "root"), root, "must be an absolute, clean path"))
		}
	}
	switch mp := fs.OperatorMountPath; {
	case mp == "":
		errs = append(errs, field.Required(p.Child("operatorMountPath"),
			"the folder where the operator's container sees the filesystem's root; the operator resolves dataset paths there"))
	case !safepath.IsClean(mp):
		errs = append(errs, field.Invalid(p.Child("operatorMountPath"), mp, "must be an absolute, clean path"))
	}
	return errs
}
