// Package jobs reads the state of the batch/v1 Jobs the operator creates (training attempts and dataset
// verifications).
package jobs

import (
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Ended returns the condition that ended the Job, Complete or Failed, once it is true; nil while the Job runs.
func Ended(job *batchv1.Job) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			return c
		}
	}
	return nil
}
