{{/* Chart name, overridable. */}}
{{- define "albdrain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object name prefix: the release name, plus the chart name unless it already contains it. */}}
{{- define "albdrain.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "albdrain.selectorLabels" -}}
app.kubernetes.io/name: {{ include "albdrain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "albdrain.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "albdrain.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "albdrain.serviceAccountName" -}}
{{- default (include "albdrain.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "albdrain.certSecretName" -}}
{{- default (printf "%s-certs" (include "albdrain.fullname" .)) .Values.certificates.secretName }}
{{- end }}

{{/* The name the apiserver and the in-pod helper dial; the serving certificate is issued for it. */}}
{{- define "albdrain.serviceDNSName" -}}
{{- printf "%s.%s.svc" (include "albdrain.fullname" .) .Release.Namespace }}
{{- end }}

{{/* The manager's image. */}}
{{- define "albdrain.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "albdrain.selfManagedCerts" -}}
{{- if eq .Values.certificates.provider "self" }}true{{ end }}
{{- end }}

{{/* Where the certificate Secret is mounted: the webhook's and the hold endpoint's certificate directory. */}}
{{- define "albdrain.certDir" -}}
/var/run/albdrain/certs
{{- end }}

{{/* The image of the init container injected into pods: its own value, or the manager's image. */}}
{{- define "albdrain.helperImage" -}}
{{- .Values.hold.helperImage | default (include "albdrain.image" .) }}
{{- end }}

{{/* A duration value as a Go duration: a plain number is seconds ("--set x=0" works). */}}
{{- define "albdrain.duration" -}}
{{- if or (kindIs "int64" .) (kindIs "float64" .) (kindIs "int" .) -}}
{{- printf "%vs" . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end }}
