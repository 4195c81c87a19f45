{{/* Chart name, overridable. */}}
{{- define "synth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name. Kept to 52 characters: Job pod names append "-<index>-<5 chars>" and
Deployment pod names append a ReplicaSet hash and 5 characters, and both must fit in 63.
*/}}
{{- define "synth.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "synth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "synth.labels" -}}
helm.sh/chart: {{ include "synth.chart" . }}
{{ include "synth.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: load-generator
{{- end }}

{{/* Labels that select this release's pods (Service, ServiceMonitor, spread constraints). */}}
{{- define "synth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "synth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "synth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Consistency checks that values.schema.json cannot express clearly. */}}
{{- define "synth.validate" -}}
{{- $url := required "serverUrl is required (https://..., e.g. a cluster-internal service name)" .Values.serverUrl }}
{{- if not (hasPrefix "https://" $url) }}
{{- fail (printf "serverUrl must start with https:// (WebTransport), got %q" $url) }}
{{- end }}
{{- if not (has .Values.mode (list "job" "deployment")) }}
{{- fail (printf "mode must be job or deployment, got %q" .Values.mode) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (ne .Values.mode "deployment") }}
{{- fail "autoscaling.enabled needs mode: deployment (a Job's pod count is fixed)" }}
{{- end }}
{{- if and (not .Values.media.audio) (not .Values.media.video) }}
{{- fail "media.audio and media.video are both false: participants would send nothing" }}
{{- end }}
{{- with .Values.auth }}
{{- if .existingSecret }}
{{- if and .jwtSecretKey .tokenKey }}
{{- fail "auth: set only one of jwtSecretKey and tokenKey" }}
{{- end }}
{{- if not (or .jwtSecretKey .tokenKey) }}
{{- fail "auth.existingSecret is set: also set auth.jwtSecretKey or auth.tokenKey" }}
{{- end }}
{{- else if or .jwtSecretKey .tokenKey }}
{{- fail "auth.jwtSecretKey/tokenKey need auth.existingSecret (the Secret that holds them)" }}
{{- end }}
{{- end }}
{{- $tls := 0 }}
{{- range (list .Values.tls.insecure .Values.tls.certSha256 .Values.tls.caSecret) }}{{ if . }}{{ $tls = add1 $tls }}{{ end }}{{ end }}
{{- if gt $tls 1 }}
{{- fail "tls: set only one of tls.caSecret, tls.certSha256 and tls.insecure (the replayer takes one)" }}
{{- end }}
{{- end }}

{{/* True ("true") when the config needs the token injected by the init container. */}}
{{- define "synth.tokenAuth" -}}
{{- if and .Values.auth.existingSecret .Values.auth.tokenKey }}true{{ end }}
{{- end }}

{{/* Path of the config the replayer reads. */}}
{{- define "synth.configPath" -}}
{{- if include "synth.tokenAuth" . }}/run/synth/config.yaml{{ else }}/config/config.yaml{{ end }}
{{- end }}

{{/*
The replayer's config (docs/src/contracts.md). One group whose count CLIENTS_PER_POD also sets.
Id templates: {index} = participant within the pod, {pod} = POD_NAME, {pod_index} = POD_INDEX,
{meeting} = (pod_index × count + index) / meeting_size.
*/}}
{{- define "synth.config" -}}
{{- $v := .Values -}}
server_url: {{ $v.serverUrl | quote }}
pack: {{ $v.pack | quote }}
duration: {{ $v.duration | quote }}
ramp_up_delay_ms: {{ int $v.rampUpDelayMs }}
connect_timeout: {{ $v.connectTimeout | quote }}
max_concurrent_connects: {{ int $v.maxConcurrentConnects }}
{{- if or $v.tls.insecure $v.tls.certSha256 $v.tls.caSecret }}
tls:
  {{- if $v.tls.caSecret }}
  ca_cert: {{ printf "/etc/synth/tls/%s" $v.tls.caKey | quote }}
  {{- end }}
  {{- if $v.tls.certSha256 }}
  cert_sha256: {{ lower $v.tls.certSha256 | quote }}
  {{- end }}
  {{- if $v.tls.insecure }}
  insecure: true
  {{- end }}
{{- end }}
{{- if and $v.auth.existingSecret $v.auth.jwtSecretKey }}
auth:
  jwt_secret_env: JWT_SECRET
  jwt_ttl: {{ $v.auth.jwtTtl | quote }}
{{- end }}
groups:
  - count: {{ int $v.clientsPerPod }}
    {{- if eq $v.mode "job" }}
    user_id: {{ printf "%s-{pod_index}-{index}" $v.userIdPrefix | quote }}
    {{- else }}
    user_id: {{ printf "%s-{pod}-{index}" $v.userIdPrefix | quote }}
    {{- end }}
    {{- if $v.meeting.id }}
    meeting_id: {{ $v.meeting.id | quote }}
    {{- else if eq $v.mode "job" }}
    meeting_id: {{ printf "%s-{meeting}" $v.meeting.prefix | quote }}
    meeting_size: {{ int $v.meeting.size }}
    {{- else }}
    meeting_id: {{ printf "%s-{pod}-{meeting}" $v.meeting.prefix | quote }}
    meeting_size: {{ int $v.meeting.size }}
    {{- end }}
    enable_audio: {{ $v.media.audio }}
    enable_video: {{ $v.media.video }}
    {{- if $v.media.rendition }}
    rendition: {{ $v.media.rendition | quote }}
    {{- end }}
    {{- with $v.behaviour.actions }}
    actions:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- with (omit $v.behaviour "actions") }}
{{ toYaml . }}
{{- end }}
{{- with $v.thresholds }}
thresholds:
  {{- range $k, $t := . }}
  {{ $k }}: {{ $t | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Whole seconds (rounded up) of a duration string like "1m30s". */}}
{{- define "synth.seconds" -}}
{{- $secs := 0 }}
{{- range (regexFindAll "[0-9]+(ms|s|m|h)" . -1) }}
{{- $n := int (regexFind "^[0-9]+" .) }}
{{- $unit := regexReplaceAll "^[0-9]+" . "" }}
{{- if eq $unit "h" }}{{ $secs = add $secs (mul $n 3600) }}
{{- else if eq $unit "m" }}{{ $secs = add $secs (mul $n 60) }}
{{- else if eq $unit "s" }}{{ $secs = add $secs $n }}
{{- else }}{{ $secs = add $secs (div (add $n 999) 1000) }}
{{- end }}
{{- end }}
{{- $secs }}
{{- end }}

{{/* activeDeadlineSeconds for job mode: duration + metrics hold + ramp-up + margin, unless given. */}}
{{- define "synth.activeDeadlineSeconds" -}}
{{- if .Values.job.activeDeadlineSeconds }}
{{- int .Values.job.activeDeadlineSeconds }}
{{- else }}
{{- $run := int (include "synth.seconds" .Values.duration) }}
{{- $hold := int (include "synth.seconds" (.Values.metrics.hold | default "0s")) }}
{{- $ramp := div (add (mul .Values.clientsPerPod .Values.rampUpDelayMs) 999) 1000 }}
{{- add $run $hold $ramp (int .Values.job.deadlineMarginSeconds) }}
{{- end }}
{{- end }}
