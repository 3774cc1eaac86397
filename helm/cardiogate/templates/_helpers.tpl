{{/* Names and labels. */}}
{{- define "cardiogate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cardiogate.fullname" -}}
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

{{- define "cardiogate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cardiogate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cardiogate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "cardiogate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cardiogate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cardiogate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding api-token (and database-url when given as a value). */}}
{{- define "cardiogate.secretName" -}}
{{- include "cardiogate.fullname" . }}
{{- end }}

{{- define "cardiogate.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "cardiogate.fullname" .)) .Values.dicomTls.existingSecret }}
{{- end }}

{{- /* HTTPS when settings name a certificate for the API: probes and scrapes follow */ -}}
{{- define "cardiogate.httpScheme" -}}
{{- if .Values.settings.http_tls_cert_file }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{- define "cardiogate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
