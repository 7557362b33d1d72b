{{/*
The chart name, overridable so a release can rename its objects.
*/}}
{{- define "keda.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release-qualified name. A release already named after the chart keeps its name, so
release "keda" yields "keda", not "keda-keda".
*/}}
{{- define "keda.fullname" -}}
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

{{- define "keda.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keda.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keda.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "keda.labels" -}}
helm.sh/chart: {{ include "keda.chart" . }}
{{ include "keda.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The image tag: the chart's appVersion unless the values pin another.
*/}}
{{- define "keda.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion | toString }}
{{- end }}

{{- define "keda.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "keda.tag" .) }}
{{- end }}

{{- define "keda.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keda.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
