{{/*
The pod template shared by the Job and the Deployment.
*/}}
{{- define "synth.podTemplate" -}}
{{- $tokenAuth := include "synth.tokenAuth" . -}}
metadata:
  labels:
    {{- include "synth.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # A config change rolls the pods (Deployment) or shows in the Job's template.
    checksum/config: {{ include "synth.config" . | sha256sum }}
    {{- if .Values.metrics.scrapeAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .Values.metrics.port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- if eq .Values.mode "job" }}
  restartPolicy: Never
  {{- end }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- if .Values.hostNetwork }}
  hostNetwork: true
  dnsPolicy: ClusterFirstWithHostNet
  {{- end }}
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- if $tokenAuth }}
  initContainers:
    # The config format takes a fixed token literally: copy the ConfigMap's config and append
    # the token from the Secret, into a memory-backed emptyDir. A JWT is base64url parts joined
    # by dots; anything else is refused rather than pasted into YAML.
    - name: config-with-token
      image: {{ include "synth.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["/bin/sh", "-c"]
      args:
        - |
          set -eu
          # A Secret made from a file often ends in a newline: drop line breaks.
          AUTH_TOKEN=$(printf '%s' "$AUTH_TOKEN" | tr -d '\r\n')
          case "$AUTH_TOKEN" in
            ""|*[!A-Za-z0-9._-]*) echo "auth token in Secret {{ .Values.auth.existingSecret }} key {{ .Values.auth.tokenKey }} is not a JWT" >&2; exit 1 ;;
          esac
          { cat /config/config.yaml; printf 'auth:\n  token: "%s"\n' "$AUTH_TOKEN"; } > /run/synth/config.yaml
      env:
        - name: AUTH_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ .Values.auth.existingSecret }}
              key: {{ .Values.auth.tokenKey }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        requests:
          cpu: 10m
          memory: 16Mi
        limits:
          memory: 32Mi
      volumeMounts:
        - name: config
          mountPath: /config
          readOnly: true
        - name: rendered-config
          mountPath: /run/synth
  {{- end }}
  containers:
    - name: synth-replay
      image: {{ include "synth.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - run
        - --config
        - {{ include "synth.configPath" . }}
        {{- if and (eq .Values.mode "job") .Values.job.printReport }}
        - --print-report
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- if eq .Values.mode "job" }}
        # Stable index 0..replicaCount-1 of an Indexed Job; Kubernetes also sets
        # JOB_COMPLETION_INDEX from the same annotation.
        - name: POD_INDEX
          valueFrom:
            fieldRef:
              fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
        {{- end }}
        - name: CLIENTS_PER_POD
          value: {{ .Values.clientsPerPod | quote }}
        - name: SERVER_URL
          value: {{ .Values.serverUrl | quote }}
        - name: PACK
          value: {{ .Values.pack | quote }}
        - name: CONFIG
          value: {{ include "synth.configPath" . }}
        - name: METRICS_LISTEN
          value: {{ printf "0.0.0.0:%v" .Values.metrics.port | quote }}
        - name: METRICS_HOLD
          value: {{ .Values.metrics.hold | quote }}
        - name: RUST_LOG
          value: {{ .Values.logLevel | quote }}
        {{- if and .Values.auth.existingSecret .Values.auth.jwtSecretKey }}
        - name: JWT_SECRET
          valueFrom:
            secretKeyRef:
              name: {{ .Values.auth.existingSecret }}
              key: {{ .Values.auth.jwtSecretKey }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
          protocol: TCP
      # /healthz answers once the pack is mapped and the run has started.
      startupProbe:
        httpGet:
          path: /healthz
          port: metrics
        periodSeconds: 2
        failureThreshold: 60
      readinessProbe:
        httpGet:
          path: /healthz
          port: metrics
        periodSeconds: 10
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: config
          mountPath: /config
          readOnly: true
        {{- if $tokenAuth }}
        - name: rendered-config
          mountPath: /run/synth
          readOnly: true
        {{- end }}
        {{- if .Values.tls.caSecret }}
        - name: tls-ca
          mountPath: /etc/synth/tls
          readOnly: true
        {{- end }}
        # The root filesystem is read-only; /tmp is the only writable place.
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "synth.fullname" . }}
    {{- if $tokenAuth }}
    - name: rendered-config
      emptyDir:
        medium: Memory
        sizeLimit: 1Mi
    {{- end }}
    {{- if .Values.tls.caSecret }}
    - name: tls-ca
      secret:
        secretName: {{ .Values.tls.caSecret }}
        items:
          - key: {{ .Values.tls.caKey }}
            path: {{ .Values.tls.caKey }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
  {{- if or .Values.topologySpread.enabled .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- if .Values.topologySpread.enabled }}
    - maxSkew: {{ .Values.topologySpread.maxSkew }}
      topologyKey: {{ .Values.topologySpread.topologyKey }}
      whenUnsatisfiable: {{ .Values.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "synth.selectorLabels" . | nindent 10 }}
    {{- end }}
    {{- with .Values.topologySpreadConstraints }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
