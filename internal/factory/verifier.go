package factory

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	aifv1 "github.com/aifactory-eu/aifactory-operator/api/v1alpha1"
)

// Verifier stands in for the kubelet on the dataset verification pods of the simulated nodes: no container
// runs there, so it runs the operator's own `manager verify-dataset` on the host folder that the pod's volume
// names (the simulated filesystem is a folder on this machine), and writes the result as the container's
// termination message, where the operator reads it. The digest is the real walker's digest of real files.
type Verifier struct {
	Client client.WithWatch
	// Manager is the operator's binary.
	Manager string
	// Log receives a line per verified pod.
	Log func(format string, args ...any)
}

// Run verifies running verification pods until ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	sel := labels.NewSelector()
	req, err := labels.NewRequirement(aifv1.DatasetMountLabel, selection.Exists, nil)
	if err != nil {
		return err
	}
	sel = sel.Add(*req)
	for ctx.Err() == nil {
		var pods corev1.PodList
		w, err := v.Client.Watch(ctx, &pods, client.MatchingLabelsSelector{Selector: sel})
		if err != nil {
			v.Log("watching pods: %v", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) || pod.Status.Phase != corev1.PodRunning || pod.DeletionTimestamp != nil {
				continue
			}
			if err := v.verify(ctx, pod); err != nil {
				v.Log("verifying %s/%s: %v", pod.Namespace, pod.Name, err)
			}
		}
		w.Stop()
	}
	return nil
}

func (v *Verifier) verify(ctx context.Context, pod *corev1.Pod) error {
	// Only the operator's verification pods: a container "verify" running "verify-dataset", in a Job.
	c0 := pod.Spec.Containers[0]
	if c0.Name != "verify" || len(c0.Args) == 0 || c0.Args[0] != "verify-dataset" || !ownedByJob(pod) {
		return nil
	}
	root, err := v.hostFolder(ctx, pod)
	if err != nil {
		return v.finish(ctx, pod, 2, err.Error())
	}
	c := pod.Spec.Containers[0]
	args := append(append([]string{}, c.Args...), "--termination-log=")
	for i, a := range args {
		if strings.HasPrefix(a, "--root=") {
			args[i] = "--root=" + root
		}
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, v.Manager, args...) //nolint:gosec // the operator's own binary, on a pod the operator made
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return v.finish(ctx, pod, 1, strings.TrimSpace(errOut.String()+" "+err.Error()))
	}
	v.Log("verified %s/%s on %s", pod.Namespace, pod.Name, root)
	return v.finish(ctx, pod, 0, strings.TrimSpace(out.String()))
}

// hostFolder follows the pod's dataset volume to its PersistentVolume's hostPath folder, plus the mount's
// subPath.
func (v *Verifier) hostFolder(ctx context.Context, pod *corev1.Pod) (string, error) {
	for _, vol := range pod.Spec.Volumes {
		if vol.PersistentVolumeClaim == nil {
			continue
		}
		pvc := &corev1.PersistentVolumeClaim{}
		if err := v.Client.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: vol.PersistentVolumeClaim.ClaimName}, pvc); err != nil {
			return "", err
		}
		pv := &corev1.PersistentVolume{}
		if err := v.Client.Get(ctx, client.ObjectKey{Name: pvc.Spec.VolumeName}, pv); err != nil {
			return "", err
		}
		if pv.Spec.HostPath == nil {
			return "", fmt.Errorf("volume %s is not a hostPath volume; the local factory can only verify its own folders", pv.Name)
		}
		for _, m := range pod.Spec.Containers[0].VolumeMounts {
			if m.Name == vol.Name {
				return filepath.Join(pv.Spec.HostPath.Path, m.SubPath), nil
			}
		}
		return pv.Spec.HostPath.Path, nil
	}
	return "", fmt.Errorf("pod %s mounts no claim", pod.Name)
}

// finish ends the pod the way the kubelet would: the container terminated with code and message.
func (v *Verifier) finish(ctx context.Context, pod *corev1.Pod, code int32, message string) error {
	now := metav1.Now()
	phase := corev1.PodSucceeded
	if code != 0 {
		phase = corev1.PodFailed
	}
	pod.Status.Phase = phase
	started := now
	if pod.Status.StartTime != nil {
		started = *pod.Status.StartTime
	}
	var statuses []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		statuses = append(statuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: message, StartedAt: started, FinishedAt: now, Reason: reason(code)},
		}})
	}
	pod.Status.ContainerStatuses = statuses
	for i := range pod.Status.Conditions {
		if t := pod.Status.Conditions[i].Type; t == corev1.PodReady || t == corev1.ContainersReady {
			pod.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	return v.Client.Status().Update(ctx, pod)
}

func ownedByJob(pod *corev1.Pod) bool {
	for _, o := range pod.OwnerReferences {
		if o.Kind == "Job" && o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

func reason(code int32) string {
	if code == 0 {
		return "Completed"
	}
	return "Error"
}
