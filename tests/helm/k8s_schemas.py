"""JSON schemas for the Kubernetes kinds the executor-sidecar chart emits.

Written by hand from the Kubernetes API reference (v1.29): required fields, types, enums and
formats, and no unknown fields at every level modelled here (additionalProperties false). Levels
deliberately left open (an affinity, an env valueFrom, metadata annotations' values) are marked
ANY. SCHEMAS maps (apiVersion, kind) to a draft-07 schema.
"""

ANY = {}
STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
STRLIST = {"type": "array", "items": STR}
STRMAP = {"type": "object", "additionalProperties": STR}
# resource.Quantity: "100m", "1Gi", "2", "1e3" (serialised as a string or a number).
QUANTITY = {"anyOf": [{"type": "string", "pattern": r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"},
                      {"type": "number"}]}
DNS1123_LABEL = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
DNS1123_SUBDOMAIN = {"type": "string", "maxLength": 253,
                     "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}
# IANA_SVC_NAME: at most 15 characters, lower-case letters, digits and '-', at least one letter.
PORT_NAME = {"type": "string", "maxLength": 15, "pattern": r"^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}
INT_OR_STRING = {"anyOf": [INT, STR]}
LABEL_VALUE = {"type": "string", "maxLength": 63, "pattern": r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"}
LABELS = {"type": "object", "additionalProperties": LABEL_VALUE,
          "propertyNames": {"pattern": r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"}}


def obj(props, required=(), **extra):
    """An object with exactly these properties (none unknown)."""
    d = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        d["required"] = list(required)
    d.update(extra)
    return d


def one_of_keys(keys):
    """Exactly one of these keys present (a union such as a probe handler or a volume source)."""
    return {"oneOf": [{"required": [k]} for k in keys]}


METADATA = obj({
    "name": DNS1123_SUBDOMAIN, "namespace": DNS1123_LABEL, "labels": LABELS,
    "annotations": STRMAP, "generateName": STR,
}, ["name"])
TEMPLATE_METADATA = obj({"labels": LABELS, "annotations": STRMAP, "name": STR})

LABEL_SELECTOR = obj({
    "matchLabels": LABELS,
    "matchExpressions": {"type": "array", "items": obj({
        "key": STR, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
        "values": STRLIST}, ["key", "operator"])},
})

CAPABILITIES = obj({"add": STRLIST, "drop": STRLIST})
SECCOMP = obj({"type": {"enum": ["RuntimeDefault", "Localhost", "Unconfined"]},
               "localhostProfile": STR}, ["type"])
SECURITY_CONTEXT = obj({
    "allowPrivilegeEscalation": BOOL, "capabilities": CAPABILITIES, "privileged": BOOL,
    "procMount": {"enum": ["Default", "Unmasked"]}, "readOnlyRootFilesystem": BOOL,
    "runAsGroup": INT, "runAsNonRoot": BOOL, "runAsUser": INT, "seccompProfile": SECCOMP,
    "seLinuxOptions": ANY, "windowsOptions": ANY, "appArmorProfile": ANY,
})
POD_SECURITY_CONTEXT = obj({
    "fsGroup": INT, "fsGroupChangePolicy": {"enum": ["OnRootMismatch", "Always"]},
    "runAsGroup": INT, "runAsNonRoot": BOOL, "runAsUser": INT, "seccompProfile": SECCOMP,
    "seLinuxOptions": ANY, "supplementalGroups": {"type": "array", "items": INT},
    "sysctls": {"type": "array", "items": obj({"name": STR, "value": STR}, ["name", "value"])},
    "windowsOptions": ANY, "appArmorProfile": ANY,
})
RESOURCES = obj({
    "limits": {"type": "object", "additionalProperties": QUANTITY},
    "requests": {"type": "object", "additionalProperties": QUANTITY},
    "claims": ANY,
})
PROBE_HANDLERS = ["exec", "httpGet", "tcpSocket", "grpc"]
PROBE = obj({
    "exec": obj({"command": STRLIST}),
    "httpGet": obj({"path": STR, "port": INT_OR_STRING, "host": STR,
                    "scheme": {"enum": ["HTTP", "HTTPS"]}, "httpHeaders": ANY}, ["port"]),
    "tcpSocket": obj({"port": INT_OR_STRING, "host": STR}, ["port"]),
    # A gRPC probe's port is a number: named ports are not allowed here.
    "grpc": obj({"port": PORT, "service": STR}, ["port"]),
    "initialDelaySeconds": {"type": "integer", "minimum": 0},
    "periodSeconds": {"type": "integer", "minimum": 1},
    "timeoutSeconds": {"type": "integer", "minimum": 1},
    "successThreshold": {"type": "integer", "minimum": 1},
    "failureThreshold": {"type": "integer", "minimum": 1},
    "terminationGracePeriodSeconds": INT,
}, **one_of_keys(PROBE_HANDLERS))
ENV_VAR = obj({"name": {"type": "string", "minLength": 1}, "value": STR, "valueFrom": ANY}, ["name"])
CONTAINER_PORT = obj({
    "name": PORT_NAME, "containerPort": PORT, "hostPort": PORT, "hostIP": STR,
    "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
}, ["containerPort"])
VOLUME_MOUNT = obj({
    "name": STR, "mountPath": {"type": "string", "pattern": "^/"}, "readOnly": BOOL,
    "subPath": STR, "subPathExpr": STR, "recursiveReadOnly": STR,
    "mountPropagation": {"enum": ["None", "HostToContainer", "Bidirectional"]},
}, ["name", "mountPath"])
CONTAINER = obj({
    "name": DNS1123_LABEL, "image": {"type": "string", "minLength": 1},
    "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "command": STRLIST, "args": STRLIST, "workingDir": STR,
    "env": {"type": "array", "items": ENV_VAR}, "envFrom": {"type": "array", "items": ANY},
    "ports": {"type": "array", "items": CONTAINER_PORT},
    "readinessProbe": PROBE, "livenessProbe": PROBE, "startupProbe": PROBE,
    "volumeMounts": {"type": "array", "items": VOLUME_MOUNT},
    "securityContext": SECURITY_CONTEXT, "resources": RESOURCES, "lifecycle": ANY,
    "restartPolicy": {"enum": ["Always"]},
    "stdin": BOOL, "stdinOnce": BOOL, "tty": BOOL, "terminationMessagePath": STR,
    "terminationMessagePolicy": {"enum": ["File", "FallbackToLogsOnError"]},
}, ["name", "image"])
KEY_TO_PATH = {"type": "array", "items": obj({"key": STR, "path": STR, "mode": {"type": "integer", "minimum": 0, "maximum": 511}}, ["key", "path"])}
MODE = {"type": "integer", "minimum": 0, "maximum": 511}
VOLUME_SOURCES = {
    "emptyDir": obj({"medium": {"enum": ["", "Memory"]}, "sizeLimit": QUANTITY}),
    "secret": obj({"secretName": DNS1123_SUBDOMAIN, "items": KEY_TO_PATH, "defaultMode": MODE, "optional": BOOL}, ["secretName"]),
    "configMap": obj({"name": DNS1123_SUBDOMAIN, "items": KEY_TO_PATH, "defaultMode": MODE, "optional": BOOL}, ["name"]),
    "persistentVolumeClaim": obj({"claimName": DNS1123_SUBDOMAIN, "readOnly": BOOL}, ["claimName"]),
    "projected": obj({"defaultMode": MODE, "sources": {"type": "array", "items": obj({
        "secret": obj({"name": DNS1123_SUBDOMAIN, "items": KEY_TO_PATH, "optional": BOOL}, ["name"]),
        "configMap": obj({"name": DNS1123_SUBDOMAIN, "items": KEY_TO_PATH, "optional": BOOL}, ["name"]),
        "serviceAccountToken": ANY, "downwardAPI": ANY, "clusterTrustBundle": ANY,
    }, **one_of_keys(["secret", "configMap", "serviceAccountToken", "downwardAPI", "clusterTrustBundle"]))}}, ["sources"]),
    # Sources the chart never emits but a user's extraVolumes may: checked as objects only.
    "hostPath": {"type": "object"}, "downwardAPI": {"type": "object"}, "csi": {"type": "object"},
    "nfs": {"type": "object"}, "ephemeral": {"type": "object"},
}
VOLUME = obj(dict(VOLUME_SOURCES, name=DNS1123_LABEL), ["name"], **one_of_keys(list(VOLUME_SOURCES)))
TOLERATION = obj({"key": STR, "operator": {"enum": ["Exists", "Equal"]}, "value": STR,
                  "effect": {"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
                  "tolerationSeconds": INT})
POD_SPEC = obj({
    "containers": {"type": "array", "minItems": 1, "items": CONTAINER},
    "initContainers": {"type": "array", "items": CONTAINER},
    "volumes": {"type": "array", "items": VOLUME},
    "securityContext": POD_SECURITY_CONTEXT,
    "serviceAccountName": DNS1123_SUBDOMAIN, "automountServiceAccountToken": BOOL,
    "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0},
    "imagePullSecrets": {"type": "array", "items": obj({"name": STR}, ["name"])},
    "nodeSelector": STRMAP, "tolerations": {"type": "array", "items": TOLERATION},
    "affinity": obj({"nodeAffinity": ANY, "podAffinity": ANY, "podAntiAffinity": ANY}),
    "restartPolicy": {"enum": ["Always", "OnFailure", "Never"]},
    "priorityClassName": STR, "shareProcessNamespace": BOOL, "hostNetwork": BOOL,
    "hostPID": BOOL, "hostIPC": BOOL, "dnsPolicy": STR, "enableServiceLinks": BOOL,
    "topologySpreadConstraints": {"type": "array"}, "runtimeClassName": STR,
})
DEPLOYMENT = obj({
    "apiVersion": {"const": "apps/v1"}, "kind": {"const": "Deployment"}, "metadata": METADATA,
    "spec": obj({
        "replicas": {"type": "integer", "minimum": 0},
        "selector": LABEL_SELECTOR,
        "template": obj({"metadata": TEMPLATE_METADATA, "spec": POD_SPEC}, ["spec"]),
        "strategy": obj({"type": {"enum": ["Recreate", "RollingUpdate"]},
                         "rollingUpdate": obj({"maxSurge": INT_OR_STRING, "maxUnavailable": INT_OR_STRING})}),
        "minReadySeconds": INT, "revisionHistoryLimit": INT, "progressDeadlineSeconds": INT,
        "paused": BOOL,
    }, ["selector", "template"]),
}, ["apiVersion", "kind", "metadata", "spec"])
SERVICE_PORT = obj({
    "name": PORT_NAME, "port": PORT, "targetPort": INT_OR_STRING, "nodePort": PORT,
    "protocol": {"enum": ["TCP", "UDP", "SCTP"]}, "appProtocol": STR,
}, ["port"])
SERVICE = obj({
    "apiVersion": {"const": "v1"}, "kind": {"const": "Service"}, "metadata": METADATA,
    "spec": obj({
        "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
        "clusterIP": STR, "selector": STRMAP, "ports": {"type": "array", "items": SERVICE_PORT},
        "publishNotReadyAddresses": BOOL, "sessionAffinity": {"enum": ["None", "ClientIP"]},
        "externalTrafficPolicy": {"enum": ["Cluster", "Local"]},
        "internalTrafficPolicy": {"enum": ["Cluster", "Local"]},
        "ipFamilyPolicy": STR, "loadBalancerSourceRanges": STRLIST,
    }),
}, ["apiVersion", "kind", "metadata", "spec"])
SECRET = obj({
    "apiVersion": {"const": "v1"}, "kind": {"const": "Secret"}, "metadata": METADATA,
    "type": STR, "immutable": BOOL,
    "data": {"type": "object", "additionalProperties": {"type": "string", "pattern": r"^[A-Za-z0-9+/]*={0,2}$"},
             "propertyNames": {"pattern": r"^[-._a-zA-Z0-9]+$"}},
    "stringData": {"type": "object", "additionalProperties": STR},
}, ["apiVersion", "kind", "metadata"])
CONFIGMAP = obj({
    "apiVersion": {"const": "v1"}, "kind": {"const": "ConfigMap"}, "metadata": METADATA,
    "data": {"type": "object", "additionalProperties": STR, "propertyNames": {"pattern": r"^[-._a-zA-Z0-9]+$"}},
    "binaryData": {"type": "object", "additionalProperties": STR}, "immutable": BOOL,
}, ["apiVersion", "kind", "metadata"])
SERVICE_ACCOUNT = obj({
    "apiVersion": {"const": "v1"}, "kind": {"const": "ServiceAccount"}, "metadata": METADATA,
    "automountServiceAccountToken": BOOL, "imagePullSecrets": {"type": "array"}, "secrets": {"type": "array"},
}, ["apiVersion", "kind", "metadata"])
NP_PEER = obj({
    "podSelector": LABEL_SELECTOR, "namespaceSelector": LABEL_SELECTOR,
    "ipBlock": obj({"cidr": STR, "except": STRLIST}, ["cidr"]),
}, minProperties=1)
NP_PORT = obj({"protocol": {"enum": ["TCP", "UDP", "SCTP"]}, "port": INT_OR_STRING, "endPort": PORT})
NETWORK_POLICY = obj({
    "apiVersion": {"const": "networking.k8s.io/v1"}, "kind": {"const": "NetworkPolicy"},
    "metadata": METADATA,
    "spec": obj({
        "podSelector": LABEL_SELECTOR,
        "policyTypes": {"type": "array", "items": {"enum": ["Ingress", "Egress"]}},
        "ingress": {"type": "array", "items": obj({"from": {"type": "array", "items": NP_PEER},
                                                    "ports": {"type": "array", "items": NP_PORT}})},
        "egress": {"type": "array", "items": obj({"to": {"type": "array", "items": NP_PEER},
                                                   "ports": {"type": "array", "items": NP_PORT}})},
    }, ["podSelector"]),
}, ["apiVersion", "kind", "metadata", "spec"])
METRIC_TARGET = obj({"type": {"enum": ["Utilization", "Value", "AverageValue"]},
                     "averageUtilization": {"type": "integer", "minimum": 1},
                     "averageValue": QUANTITY, "value": QUANTITY}, ["type"])
HPA = obj({
    "apiVersion": {"const": "autoscaling/v2"}, "kind": {"const": "HorizontalPodAutoscaler"},
    "metadata": METADATA,
    "spec": obj({
        "scaleTargetRef": obj({"apiVersion": STR, "kind": STR, "name": STR}, ["kind", "name"]),
        "minReplicas": {"type": "integer", "minimum": 1},
        "maxReplicas": {"type": "integer", "minimum": 1},
        "metrics": {"type": "array", "items": obj({
            "type": {"enum": ["Resource", "Pods", "Object", "External", "ContainerResource"]},
            "resource": obj({"name": STR, "target": METRIC_TARGET}, ["name", "target"]),
            "pods": ANY, "object": ANY, "external": ANY, "containerResource": ANY,
        }, ["type"])},
        "behavior": ANY,
    }, ["scaleTargetRef", "maxReplicas"]),
}, ["apiVersion", "kind", "metadata", "spec"])
RESOURCE_QUOTA = obj({
    "apiVersion": {"const": "v1"}, "kind": {"const": "ResourceQuota"}, "metadata": METADATA,
    "spec": obj({"hard": {"type": "object", "additionalProperties": QUANTITY},
                 "scopes": STRLIST, "scopeSelector": ANY}),
}, ["apiVersion", "kind", "metadata", "spec"])
INGRESS_BACKEND = obj({
    "service": obj({"name": DNS1123_LABEL,
                    "port": obj({"number": PORT, "name": PORT_NAME}, **one_of_keys(["number", "name"]))},
                   ["name", "port"]),
    "resource": ANY,
}, **one_of_keys(["service", "resource"]))
INGRESS = obj({
    "apiVersion": {"const": "networking.k8s.io/v1"}, "kind": {"const": "Ingress"}, "metadata": METADATA,
    "spec": obj({
        "ingressClassName": STR, "defaultBackend": INGRESS_BACKEND,
        "tls": {"type": "array", "items": obj({"hosts": STRLIST, "secretName": STR})},
        "rules": {"type": "array", "items": obj({
            "host": {"type": "string", "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"},
            "http": obj({"paths": {"type": "array", "minItems": 1, "items": obj({
                "path": {"type": "string", "pattern": "^/"},
                "pathType": {"enum": ["Exact", "Prefix", "ImplementationSpecific"]},
                "backend": INGRESS_BACKEND,
            }, ["pathType", "backend"])}}, ["paths"]),
        })},
    }),
}, ["apiVersion", "kind", "metadata", "spec"])
PVC = obj({
    "apiVersion": {"const": "v1"}, "kind": {"const": "PersistentVolumeClaim"}, "metadata": METADATA,
    "spec": obj({
        "accessModes": {"type": "array", "minItems": 1,
                        "items": {"enum": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]}},
        "storageClassName": STR, "volumeMode": {"enum": ["Filesystem", "Block"]}, "volumeName": STR,
        "resources": obj({"requests": obj({"storage": QUANTITY}, ["storage"]),
                          "limits": {"type": "object", "additionalProperties": QUANTITY}}, ["requests"]),
        "selector": LABEL_SELECTOR, "dataSource": ANY, "dataSourceRef": ANY,
    }, ["accessModes", "resources"]),
}, ["apiVersion", "kind", "metadata", "spec"])

SCHEMAS = {
    ("apps/v1", "Deployment"): DEPLOYMENT,
    ("v1", "Service"): SERVICE,
    ("v1", "Secret"): SECRET,
    ("v1", "ConfigMap"): CONFIGMAP,
    ("v1", "ServiceAccount"): SERVICE_ACCOUNT,
    ("networking.k8s.io/v1", "NetworkPolicy"): NETWORK_POLICY,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): HPA,
    ("v1", "ResourceQuota"): RESOURCE_QUOTA,
    ("networking.k8s.io/v1", "Ingress"): INGRESS,
    ("v1", "PersistentVolumeClaim"): PVC,
}
