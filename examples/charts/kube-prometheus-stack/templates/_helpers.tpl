{{/*
The chart name, overridable so a release can rename its objects.
*/}}
{{- define "kube-prometheus-stack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release-qualified name. A release already named after the chart keeps its name, so
release "kube-prometheus-stack" yields "kube-prometheus-stack", not "kube-prometheus-stack-kube-prometheus-stack".
*/}}
{{- define "kube-prometheus-stack.fullname" -}}
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

{{- define "kube-prometheus-stack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kube-prometheus-stack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-prometheus-stack.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kube-prometheus-stack.labels" -}}
helm.sh/chart: {{ include "kube-prometheus-stack.chart" . }}
{{ include "kube-prometheus-stack.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The image tag: the chart's appVersion unless the values pin another.
*/}}
{{- define "kube-prometheus-stack.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{- define "kube-prometheus-stack.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "kube-prometheus-stack.tag" .) }}
{{- end }}

{{- define "kube-prometheus-stack.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kube-prometheus-stack.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
