{{/*
Names and labels.
*/}}
{{- define "cp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "cp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The selector labels of one component: (dict "root" $ "component" "api"). */}}
{{- define "cp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "cp.labels" -}}
{{ include "cp.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: intelliauth-controlplane
{{- end -}}

{{/* Labels of the long-running pods that serve metrics. */}}
{{- define "cp.metricsLabel" -}}
intelliauth.io/metrics: "true"
{{- end -}}

{{- define "cp.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "cp.secretName" -}}
{{- default (include "cp.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "cp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "cp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The region names, comma-joined (CP_REGIONS); checked on the way. */}}
{{- define "cp.regionNames" -}}
{{- $names := list -}}
{{- range .Values.regions -}}
{{- if not (regexMatch "^[a-z0-9]([a-z0-9-]{0,28}[a-z0-9])?$" (toString .name)) -}}
{{- fail (printf "regions: %q is not a DNS label of at most 30 characters (a-z, 0-9, '-')" (toString .name)) -}}
{{- end -}}
{{- if has .name $names -}}
{{- fail (printf "regions: %q is listed twice" .name) -}}
{{- end -}}
{{- if not .existingSecret -}}
{{- fail (printf "regions: %q needs existingSecret, the Secret with its database-url" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/*
Security: the restricted Pod Security Standard. The image runs as
distroless's nonroot (65532) and writes nothing but /tmp, an emptyDir.
*/}}
{{- define "cp.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "cp.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Spread over zones and nodes: (dict "root" $ "component" "api"). */}}
{{- define "cp.topologySpread" -}}
{{- if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  {{- range list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: {{ $.root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "cp.selectorLabels" $ | nindent 8 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
Environment every control-plane process gets: logs, data dir, task queue.
*/}}
{{- define "cp.baseEnv" -}}
- name: CP_LOG_FORMAT
  value: json
- name: CP_LOG_LEVEL
  value: {{ .Values.config.logLevel | quote }}
- name: CP_DATA_DIR
  value: /tmp/controlplane
- name: CP_TASK_QUEUE
  value: {{ .Values.config.taskQueue | quote }}
{{- end -}}

{{/* Temporal: where, and the credentials (not the migrate Job's). */}}
{{- define "cp.temporalEnv" -}}
{{- $t := .Values.temporal }}
- name: CP_TEMPORAL_ADDRESS
  value: {{ required "temporal.address is required: host:port of the Temporal frontend" $t.address | quote }}
- name: CP_TEMPORAL_NAMESPACE
  value: {{ $t.namespace | quote }}
{{- if or $t.tls.enabled $t.apiKey.existingSecret }}
- name: CP_TEMPORAL_TLS
  value: "true"
{{- end }}
{{- if $t.tls.serverName }}
- name: CP_TEMPORAL_TLS_SERVER_NAME
  value: {{ $t.tls.serverName | quote }}
{{- end }}
{{- if $t.tls.existingSecret }}
{{- if $t.tls.caKey }}
- name: CP_TEMPORAL_TLS_CA_FILE
  value: /run/secrets/temporal-tls/{{ $t.tls.caKey }}
{{- end }}
{{- if $t.tls.certKey }}
- name: CP_TEMPORAL_TLS_CERT_FILE
  value: /run/secrets/temporal-tls/{{ $t.tls.certKey }}
- name: CP_TEMPORAL_TLS_KEY_FILE
  value: /run/secrets/temporal-tls/{{ required "temporal.tls.keyKey is required with certKey" $t.tls.keyKey }}
{{- end }}
{{- end }}
{{- if $t.apiKey.existingSecret }}
- name: CP_TEMPORAL_API_KEY_FILE
  value: /run/secrets/temporal-api-key/{{ $t.apiKey.key }}
{{- end }}
{{- end -}}

{{/* Settings of the api and the workers (not the hook Jobs). */}}
{{- define "cp.serverEnv" -}}
- name: CP_METRICS_ADDR
  value: {{ printf "0.0.0.0:%v" .Values.metrics.port | quote }}
- name: CP_DOMAIN_BASE
  value: {{ .Values.config.domainBase | quote }}
- name: CP_DATABASE_MAX_CONNS
  value: {{ .Values.config.databaseMaxConns | quote }}
{{- if .Values.config.consoleURL }}
- name: CP_CONSOLE_URL
  value: {{ .Values.config.consoleURL | quote }}
{{- end }}
{{- if .Values.config.temporalUIURL }}
- name: CP_TEMPORAL_UI_URL
  value: {{ .Values.config.temporalUIURL | quote }}
{{- end }}
- name: CP_KEY_ENCRYPTION_KEYS_FILE
  value: /run/secrets/controlplane/{{ .Values.secretKeys.keyEncryptionKeys }}
{{- end -}}

{{/* Control-plane database (api, worker, migrate). */}}
{{- define "cp.databaseEnv" -}}
- name: CP_DATABASE_URL_FILE
  value: /run/secrets/controlplane/{{ .Values.secretKeys.databaseURL }}
{{- end -}}

{{/* CP_REGIONS, when regions are listed. */}}
{{- define "cp.regionsEnv" -}}
{{- $regions := include "cp.regionNames" . -}}
{{- if $regions }}
- name: CP_REGIONS
  value: {{ $regions | quote }}
{{- end }}
{{- end -}}

{{/* Billing's settings (api, worker). */}}
{{- define "cp.billingEnv" -}}
{{- if .Values.billing.enabled }}
- name: CP_STRIPE_SECRET_KEY_FILE
  value: /run/secrets/controlplane/{{ .Values.secretKeys.stripeSecretKey }}
- name: CP_STRIPE_WEBHOOK_SECRET_FILE
  value: /run/secrets/controlplane/{{ .Values.secretKeys.stripeWebhookSecret }}
- name: CP_STRIPE_PRICES
  value: {{ required "billing.prices is required with billing.enabled (team=price_...,enterprise=price_...)" .Values.billing.prices | quote }}
{{- end }}
{{- end -}}

{{/* Extra non-secret settings: a map of CP_* name to value. */}}
{{- define "cp.extraEnv" -}}
{{- range $k, $v := . }}
{{- if not (regexMatch "^CP_[A-Z0-9_]+$" $k) }}
{{- fail (printf "extraEnv: %q is not a CP_* setting" $k) }}
{{- end }}
{{- if regexMatch "(DATABASE_URL|KEY_ENCRYPTION_KEYS|CODEC_TOKEN|PASSWORD|API_KEY|SECRET|_TLS_KEY|_FILE)$" $k }}
{{- fail (printf "extraEnv: %s is a secret or a file: put it in existingSecret (the chart mounts it)" $k) }}
{{- end }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end -}}

{{/*
The Secret volumes. (dict "root" $ "items" (list key...)) projects the
keys of existingSecret that one component needs, and no other.
*/}}
{{- define "cp.secretVolume" -}}
- name: controlplane-secrets
  secret:
    secretName: {{ include "cp.secretName" .root }}
    defaultMode: 0440
    items:
      {{- range .items }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
{{- end -}}

{{- define "cp.temporalVolumes" -}}
{{- $t := .Values.temporal -}}
{{- if $t.tls.existingSecret }}
- name: temporal-tls
  secret:
    secretName: {{ $t.tls.existingSecret }}
    defaultMode: 0440
    items:
      {{- if $t.tls.caKey }}
      - key: {{ $t.tls.caKey }}
        path: {{ $t.tls.caKey }}
      {{- end }}
      {{- if $t.tls.certKey }}
      - key: {{ $t.tls.certKey }}
        path: {{ $t.tls.certKey }}
      - key: {{ $t.tls.keyKey }}
        path: {{ $t.tls.keyKey }}
      {{- end }}
{{- end }}
{{- if $t.apiKey.existingSecret }}
- name: temporal-api-key
  secret:
    secretName: {{ $t.apiKey.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $t.apiKey.key }}
        path: {{ $t.apiKey.key }}
{{- end }}
{{- end -}}

{{- define "cp.temporalMounts" -}}
{{- if .Values.temporal.tls.existingSecret }}
- name: temporal-tls
  mountPath: /run/secrets/temporal-tls
  readOnly: true
{{- end }}
{{- if .Values.temporal.apiKey.existingSecret }}
- name: temporal-api-key
  mountPath: /run/secrets/temporal-api-key
  readOnly: true
{{- end }}
{{- end -}}

{{- define "cp.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- end -}}

{{- define "cp.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* Probes on the metrics listener's /healthz (the process is up). */}}
{{- define "cp.healthzProbe" -}}
httpGet:
  path: /healthz
  port: metrics
{{- end -}}

{{/*
The Temporal TLS settings checked once: a client certificate needs TLS on.
*/}}
{{- define "cp.check" -}}
{{- if and .Values.temporal.tls.existingSecret (not .Values.temporal.tls.enabled) -}}
{{- fail "temporal.tls.existingSecret is set but temporal.tls.enabled is false: turn TLS on (the certificate is only used over TLS)" -}}
{{- end -}}
{{- if not .Values.smtp.addr -}}
{{- fail "smtp.addr is required: the worker delivers invitation mail through a relay (host:port)" -}}
{{- end -}}
{{- if not .Values.smtp.from -}}
{{- fail "smtp.from is required: the sender of invitation mail, e.g. IntelliAuth <noreply@example.com>" -}}
{{- end -}}
{{- if and .Values.operatorGateway.enabled (not .Values.operatorGateway.existingSecret) -}}
{{- fail "operatorGateway.existingSecret is required with operatorGateway.enabled: the gateway's certificate, key and the operators' CA" -}}
{{- end -}}
{{- end -}}
