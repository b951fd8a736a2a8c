{{/* Names and labels. */}}
{{- define "aifactory-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aifactory-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else if contains (include "aifactory-operator.name" .) .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "aifactory-operator.name" .) | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "aifactory-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aifactory-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aifactory-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "aifactory-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: aifactory-operator
{{- end }}

{{- define "aifactory-operator.serviceAccountName" -}}
{{- default (include "aifactory-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "aifactory-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The webhook's serving certificate when cert-manager is not used: a CA and a certificate for the webhook Service,
generated at install and kept in a Secret. An upgrade reuses them until the renew-after time written on the
Secret (two years into their three), then makes new ones, so a regular upgrade rotates them. Computed once per
render and shared by the Secret, the webhook configuration and the Deployment.
*/}}
{{- define "aifactory-operator.webhookCerts" -}}
{{- if not (hasKey .Values.webhook "_certs") }}
{{- $svc := printf "%s-webhook" (include "aifactory-operator.fullname" .) }}
{{- $secret := printf "%s-webhook-cert" (include "aifactory-operator.fullname" .) }}
{{- $old := lookup "v1" "Secret" .Release.Namespace $secret }}
{{- $certs := dict }}
{{- $renewAfter := "" }}
{{- if and $old $old.metadata.annotations }}
{{- $renewAfter = index $old.metadata.annotations "aifactory.eu/renew-after" | default "" }}
{{- end }}
{{- if and $old $renewAfter (lt (now | unixEpoch | int64) ($renewAfter | int64)) }}
{{- $_ := set $certs "ca" (index $old.data "ca.crt") }}
{{- $_ := set $certs "crt" (index $old.data "tls.crt") }}
{{- $_ := set $certs "key" (index $old.data "tls.key") }}
{{- $_ := set $certs "renewAfter" $renewAfter }}
{{- $_ := set $certs "bundle" (index $old.data "ca.crt") }}
{{- else }}
{{- $ca := genCA (printf "%s-webhook-ca" (include "aifactory-operator.fullname" .)) 1095 }}
{{- $dns := list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) }}
{{- $crt := genSignedCert (printf "%s.%s.svc" $svc .Release.Namespace) nil $dns 1095 $ca }}
{{- $_ := set $certs "ca" ($ca.Cert | b64enc) }}
{{- $_ := set $certs "crt" ($crt.Cert | b64enc) }}
{{- $_ := set $certs "key" ($crt.Key | b64enc) }}
{{- $_ := set $certs "renewAfter" (now | dateModify "+17520h" | unixEpoch | toString) }}
{{- /* On renewal the webhook trusts the old CA too, until the pods that still serve the old certificate are gone. */}}
{{- if and $old $old.data (index $old.data "ca.crt") }}
{{- $_ := set $certs "bundle" (printf "%s%s" (index $old.data "ca.crt" | b64dec) $ca.Cert | b64enc) }}
{{- else }}
{{- $_ := set $certs "bundle" ($ca.Cert | b64enc) }}
{{- end }}
{{- end }}
{{- $_ := set .Values.webhook "_certs" $certs }}
{{- end }}
{{- end }}

{{- define "aifactory-operator.webhookCA" -}}
{{- include "aifactory-operator.webhookCerts" . }}
{{- .Values.webhook._certs.bundle }}
{{- end }}

{{/*
The filesystems of the operator configuration, as a YAML list. A filesystem with a preset (lustre, scale,
beegfs) gets the CSI driver and volumeHandle format of that driver's static volumes. Every filesystem gets the
folder where the operator's container sees it (operatorMountPath, default /mnt/aifactory/filesystems/<name>),
which the Deployment mounts read-only (aifactory-operator.filesystemVolume).
*/}}
{{- define "aifactory-operator.filesystems" -}}
{{- $filesystems := list }}
{{- range .Values.config.filesystems }}
{{- $fs := dict "name" .name }}
{{- with .type }}{{ $_ := set $fs "type" . }}{{ end }}
{{- if eq (default "" .preset) "lustre" }}
{{- $handle := printf "%s:/%s" (required "lustre preset: mgsNids is required" .lustre.mgsNids) (required "lustre preset: fsName is required" .lustre.fsName) }}
{{- $csi := dict "driver" "lustre.csi.hpe.com" "volumeHandle" (ternary $handle (printf "%s{path}" $handle) (default false .lustre.wholeFilesystem)) }}
{{- with .mountOptions }}{{ $_ := set $csi "mountOptions" . }}{{ end }}
{{- if .lustre.wholeFilesystem }}{{ $_ := set $csi "wholeFilesystem" true }}{{ end }}
{{- $_ := set $fs "csi" $csi }}
{{- $_ := set $fs "type" (default "Lustre" .type) }}
{{- else if eq (default "" .preset) "scale" }}
{{- $handle := printf "0;0;%s;%s;;;%s{path}" (required "scale preset: clusterId is required" (toString .scale.clusterId)) (required "scale preset: filesystemUuid is required" .scale.filesystemUuid) (required "scale preset: mountPoint is required" .scale.mountPoint) }}
{{- $csi := dict "driver" "spectrumscale.csi.ibm.com" "volumeHandle" $handle }}
{{- with .mountOptions }}{{ $_ := set $csi "mountOptions" . }}{{ end }}
{{- $_ := set $fs "csi" $csi }}
{{- $_ := set $fs "type" (default "GPFS" .type) }}
{{- else if eq (default "" .preset) "beegfs" }}
{{- $handle := printf "beegfs://%s%s{path}" (required "beegfs preset: managementHost is required" .beegfs.managementHost) (default "" .beegfs.basePath) }}
{{- $csi := dict "driver" "beegfs.csi.netapp.com" "volumeHandle" $handle }}
{{- with .mountOptions }}{{ $_ := set $csi "mountOptions" . }}{{ end }}
{{- $_ := set $fs "csi" $csi }}
{{- $_ := set $fs "type" (default "BeeGFS" .type) }}
{{- else if .preset }}
{{- fail (printf "config.filesystems[%s].preset: %q is not one of lustre, scale, beegfs" .name .preset) }}
{{- else }}
{{- with .csi }}{{ $_ := set $fs "csi" (deepCopy .) }}{{ end }}
{{- if and .csi .mountOptions }}{{ $_ := set $fs.csi "mountOptions" .mountOptions }}{{ end }}
{{- with .hostPath }}{{ $_ := set $fs "hostPath" . }}{{ end }}
{{- end }}
{{- $_ := set $fs "operatorMountPath" (default (printf "/mnt/aifactory/filesystems/%s" .name) .operatorMountPath) }}
{{- $filesystems = append $filesystems $fs }}
{{- end }}
{{- toYaml $filesystems }}
{{- end }}

{{/*
The volume through which the operator's container sees one filesystem (an element of
aifactory-operator.filesystems, with the values entry as .values): the values' operatorVolume if set, else the
chart's read-only claim of the whole CSI filesystem, else the hostPath root.
*/}}
{{- define "aifactory-operator.filesystemVolume" -}}
{{- if .values.operatorVolume }}
{{- toYaml .values.operatorVolume }}
{{- else if .fs.csi }}
persistentVolumeClaim: {claimName: {{ .claim }}, readOnly: true}
{{- else }}
hostPath: {path: {{ .fs.hostPath.root }}, type: Directory}
{{- end }}
{{- end }}
