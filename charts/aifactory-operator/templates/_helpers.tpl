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
