{{/*
Named templates of the executor-sidecar chart: names, labels, and the injection itself.

Most take a "scope": the chart's root context ($), or in library mode a dict shaped like it,
  (dict "Values" (index .Values "executor-sidecar") "Release" .Release)
so the chart's own Deployment and another chart's pods are injected by the same code.
The library templates (initContainer, wrapContainer, volumes, command) are documented in
docs/deploy.md.
*/}}

{{/* The chart name. Fixed rather than .Chart.Name: in library mode the scope's Chart is the
consumer's, and Secret names must come out the same in both places. */}}
{{- define "executor-sidecar.name" -}}
{{- default "executor-sidecar" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The base of every resource name: "<release>-executor-sidecar", or the release name when it
already holds the chart name, or fullnameOverride. At most 57 characters, so suffixes like
"-scheduler" still fit in 63. */}}
{{- define "executor-sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := include "executor-sidecar.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "name-version" for the helm.sh/chart label. */}}
{{- define "executor-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The standard labels of every resource. */}}
{{- define "executor-sidecar.labels" -}}
helm.sh/chart: {{ include "executor-sidecar.chart" . }}
app.kubernetes.io/name: {{ include "executor-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pm
{{- end }}

{{/* Selector labels of the worker pods. */}}
{{- define "executor-sidecar.workerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "executor-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: worker
{{- end }}

{{/* Selector labels of the scheduler pod. */}}
{{- define "executor-sidecar.schedulerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "executor-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: scheduler
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "executor-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "executor-sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The headless Service of the workers, and its DNS name (the scheduler's pool "dns"). */}}
{{- define "executor-sidecar.workerServiceName" -}}
{{- printf "%s-workers" (include "executor-sidecar.fullname" .) }}
{{- end }}

{{- define "executor-sidecar.workerServiceFQDN" -}}
{{- printf "%s.%s.svc.%s" (include "executor-sidecar.workerServiceName" .) .Release.Namespace .Values.clusterDomain }}
{{- end }}

{{/* The Secret the chart generates (executor token and scheduler API token). */}}
{{- define "executor-sidecar.generatedSecretName" -}}
{{- printf "%s-auth" (include "executor-sidecar.fullname" .) }}
{{- end }}

{{/* The Secret holding the executors' token or TLS pair. */}}
{{- define "executor-sidecar.authSecretName" -}}
{{- default (include "executor-sidecar.generatedSecretName" .) .Values.executor.auth.existingSecret }}
{{- end }}

{{/* The key of the executor token in authSecretName. */}}
{{- define "executor-sidecar.authSecretKey" -}}
{{- if .Values.executor.auth.existingSecret }}{{ .Values.executor.auth.secretKey }}{{ else }}token{{ end }}
{{- end }}

{{/* Whether the chart must render the generated Secret ("true" or ""). */}}
{{- define "executor-sidecar.needsGeneratedSecret" -}}
{{- $exe := and (eq .Values.executor.auth.mode "token") (not .Values.executor.auth.existingSecret) }}
{{- $api := and .Values.scheduler.enabled (eq .Values.scheduler.auth.mode "token") (not .Values.scheduler.auth.existingSecret) }}
{{- if or $exe $api }}true{{ end }}
{{- end }}

{{/* "repository:tag" of the executor image; the tag defaults to the chart's appVersion. */}}
{{- define "executor-sidecar.executorImage" -}}
{{- $img := .Values.executor.image }}
{{- $tag := $img.tag | default (and .Chart .Chart.AppVersion) }}
{{- $tag = required "executor.image.tag is required in library mode (the consumer's appVersion is not the executor's)" $tag }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}

{{- define "executor-sidecar.schedulerImage" -}}
{{- $img := .Values.scheduler.image }}
{{- printf "%s:%s" $img.repository ($img.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The name of a container's executor port: executor.portName, or "pm-<name>" cut to the 15
characters Kubernetes allows. Takes a container. */}}
{{- define "executor-sidecar.portName" -}}
{{- $e := .executor | default dict }}
{{- $e.portName | default (printf "pm-%s" .name | trunc 15 | trimSuffix "-") }}
{{- end }}

{{/*
Checks the rules values.schema.json cannot state: unique container names, ports and port names,
a command in every container, and the combinations that cannot work. Renders nothing; fails
with a message naming the value.
*/}}
{{- define "executor-sidecar.validate" -}}
{{- $names := dict }}
{{- $ports := dict }}
{{- $portNames := dict }}
{{- range $i, $c := .Values.containers }}
{{- $where := printf "containers[%d] (%q)" $i (toString $c.name) }}
{{- if not $c.command }}
{{- fail (printf "%s: command is required: the chart cannot read the image's entrypoint, so give it (e.g. [\"sleep\", \"infinity\"] for a tool image)" $where) }}
{{- end }}
{{- if hasKey $names $c.name }}
{{- fail (printf "%s: name is used by another container" $where) }}
{{- end }}
{{- $_ := set $names $c.name true }}
{{- $port := toString $c.executor.port }}
{{- if hasKey $ports $port }}
{{- fail (printf "%s: executor.port %s is used by container %q" $where $port (get $ports $port)) }}
{{- end }}
{{- $_ := set $ports $port $c.name }}
{{- $pn := include "executor-sidecar.portName" $c }}
{{- if hasKey $portNames $pn }}
{{- fail (printf "%s: port name %q is used by container %q; set executor.portName" $where $pn (get $portNames $pn)) }}
{{- end }}
{{- $_ := set $portNames $pn $c.name }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.scheduler.enabled) }}
{{- fail "ingress.enabled needs scheduler.enabled: the Ingress routes to the scheduler's API" }}
{{- end }}
{{- end }}

{{/* ---------------------------------------------------------------------------------------
     Library mode: the injection. Each renders YAML list items; indent them with nindent.
     --------------------------------------------------------------------------------------- */}}

{{/*
executor-sidecar.initContainer SCOPE
The init container that installs the static executor into the shared emptyDir ("pm-bin",
mounted at /pm). The executor image is FROM scratch, so it copies itself (--install).
*/}}
{{- define "executor-sidecar.initContainer" -}}
- name: install-executor
  image: {{ include "executor-sidecar.executorImage" . | quote }}
  imagePullPolicy: {{ .Values.executor.image.pullPolicy }}
  command: ["/pm-executor", "--install", "/pm/pm-executor"]
  volumeMounts:
    - name: pm-bin
      mountPath: /pm
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  {{- with .Values.executor.initResources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
executor-sidecar.command (dict "scope" SCOPE "container" CONTAINER)
The wrapped command of an app container, as a YAML list:
  /pm/pm-executor --name NAME --listen HOST:PORT [auth flags] [flags] -- ORIGINAL COMMAND...
The container's args stay its args: Kubernetes appends them after the command.
*/}}
{{- define "executor-sidecar.command" -}}
{{- $v := .scope.Values }}
{{- $c := .container }}
{{- if not $c.command }}
{{- fail (printf "container %q: command is required: the chart cannot read the image's entrypoint, so give it" (toString $c.name)) }}
{{- end }}
{{- $cmd := list "/pm/pm-executor" "--name" $c.name "--listen" (printf "%s:%v" $v.executor.listenHost $c.executor.port) }}
{{- if eq $v.executor.auth.mode "token" }}
{{- $cmd = concat $cmd (list "--token-file" "/var/run/pm/token") }}
{{- else if eq $v.executor.auth.mode "tls" }}
{{- $cmd = concat $cmd (list "--tls-cert" "/var/run/pm/tls.crt" "--tls-key" "/var/run/pm/tls.key") }}
{{- else }}
{{- $cmd = append $cmd "--insecure" }}
{{- end }}
{{- $cmd = concat $cmd (list "--sandbox-profile" $v.executor.sandboxProfile "--log-format" $v.executor.logFormat) }}
{{- $cmd = concat $cmd ($v.executor.extraArgs | default list) ($c.executor.extraArgs | default list) }}
{{- $cmd = concat $cmd (list "--") $c.command }}
{{- toYaml $cmd }}
{{- end }}

{{/*
executor-sidecar.probe (dict "tls" BOOL "port" PORT "timing" PROBE_TIMING)
A probe on a gRPC port: grpc.health.v1 (exempt from the token). Kubelet's gRPC probe cannot
speak TLS, so with TLS it is a TCP probe.
*/}}
{{- define "executor-sidecar.probe" -}}
{{- if .tls -}}
tcpSocket:
  port: {{ .port }}
{{- else -}}
grpc:
  port: {{ .port }}
{{- end }}
{{- with .timing }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
executor-sidecar.wrapContainer (dict "scope" SCOPE "container" CONTAINER)
A whole app container with the executor injected: the wrapped command, the executor port, gRPC
probes, the /pm, /mnt/pipe, auth and /tmp mounts, and the merged securityContext. CONTAINER has
the shape of an item of this chart's `containers` value.
*/}}
{{- define "executor-sidecar.wrapContainer" -}}
{{- $v := .scope.Values }}
{{- $c := .container }}
{{- $port := int $c.executor.port }}
{{- $sc := mergeOverwrite (deepCopy $v.containerSecurityContext) ($c.securityContext | default dict) -}}
- name: {{ $c.name }}
  image: {{ $c.image | quote }}
  imagePullPolicy: {{ $c.imagePullPolicy | default "IfNotPresent" }}
  command:
    {{- include "executor-sidecar.command" . | nindent 4 }}
  {{- with $c.args }}
  args:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    - name: {{ include "executor-sidecar.portName" $c }}
      containerPort: {{ $port }}
      protocol: TCP
  readinessProbe:
    {{- include "executor-sidecar.probe" (dict "tls" (eq $v.executor.auth.mode "tls") "port" $port "timing" $v.probes.readiness) | nindent 4 }}
  livenessProbe:
    {{- include "executor-sidecar.probe" (dict "tls" (eq $v.executor.auth.mode "tls") "port" $port "timing" $v.probes.liveness) | nindent 4 }}
  volumeMounts:
    - name: pm-bin
      mountPath: /pm
      readOnly: true
    - name: pipe
      mountPath: /mnt/pipe
    {{- if ne $v.executor.auth.mode "none-insecure" }}
    - name: pm-auth
      mountPath: /var/run/pm
      readOnly: true
    {{- end }}
    {{- if $v.tmpDir.enabled }}
    - name: tmp
      mountPath: /tmp
    {{- end }}
    {{- with $c.volumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  securityContext:
    {{- toYaml $sc | nindent 4 }}
  {{- with $c.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
executor-sidecar.volumes SCOPE
The pod volumes the injection needs: pm-bin (the executor binary), pipe (/mnt/pipe), pm-auth
(the token or TLS pair, unless none-insecure) and tmp (when tmpDir.enabled).
*/}}
{{- define "executor-sidecar.volumes" -}}
{{- $v := .Values -}}
- name: pm-bin
  emptyDir:
    sizeLimit: 64Mi
- name: pipe
  emptyDir:
    {{- with $v.pipeVolume.medium }}
    medium: {{ . }}
    {{- end }}
    {{- with $v.pipeVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- if eq $v.executor.auth.mode "token" }}
- name: pm-auth
  secret:
    secretName: {{ include "executor-sidecar.authSecretName" . }}
    defaultMode: 0440
    items:
      - key: {{ include "executor-sidecar.authSecretKey" . }}
        path: token
{{- else if eq $v.executor.auth.mode "tls" }}
- name: pm-auth
  secret:
    secretName: {{ required "executor.auth.existingSecret is required when executor.auth.mode is tls (a kubernetes.io/tls Secret)" $v.executor.auth.existingSecret }}
    defaultMode: 0440
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- end }}
{{- if $v.tmpDir.enabled }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $v.tmpDir.sizeLimit }}
{{- end }}
{{- end }}
