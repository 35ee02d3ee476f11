/*
 * pmctl JSON for protobuf-c messages: any decoded message (a Task, a WatchEvent, a PipelineInfo, a
 * Worker) becomes JSON members by walking its descriptor, so the scheduler's commands print every
 * field the wire carries without one hand-written printer per message, and a field added to the
 * proto shows up by itself. Names are the .proto field names; 64-bit numbers are plain JSON
 * numbers (exact for anything below 2^53, which covers times in ms and sequence numbers); enums
 * are their value names ("RUNNING"); bytes are base64 strings; an absent message field is left
 * out, every other field is always written, defaults included, so a script never has to guess.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/pmctl.h"

/* Bytes one element of a repeated field of type t takes in its array. */
static size_t element_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static void json_value(FILE *f, const ProtobufCFieldDescriptor *fd, const void *p)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        fprintf(f, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        fprintf(f, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        fprintf(f, "%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        fprintf(f, "%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        fprintf(f, "%.9g", (double)*(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        fprintf(f, "%.17g", *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)p ? "true" : "false", f);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
        /* A value newer than our copy of the proto is still shown, as its number. */
        if (ev)
            json_string(f, ev->name);
        else
            fprintf(f, "%d", v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        json_string(f, s ? s : "");
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        json_base64(f, b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        json_message(f, *(const ProtobufCMessage *const *)p);
        break;
    }
}

int json_message_members(FILE *f, const ProtobufCMessage *m, bool comma)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    int written = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        const void *p = base + fd->offset;
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* Only the member of a oneof that is set; the case sits at quantifier_offset. */
            if (*(const uint32_t *)(base + fd->quantifier_offset) != fd->id)
                continue;
        }
        if (fd->label != PROTOBUF_C_LABEL_REPEATED && fd->type == PROTOBUF_C_TYPE_MESSAGE &&
            *(const ProtobufCMessage *const *)p == NULL)
            continue;
        if (comma || written)
            fputc(',', f);
        json_string(f, fd->name);
        fputc(':', f);
        written++;
        if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
            json_value(f, fd, p);
            continue;
        }
        size_t n = *(const size_t *)(base + fd->quantifier_offset);
        const char *arr = *(const char *const *)p;
        size_t size = element_size(fd->type);
        fputc('[', f);
        for (size_t k = 0; k < n; k++) {
            if (k)
                fputc(',', f);
            json_value(f, fd, arr + k * size);
        }
        fputc(']', f);
    }
    return written;
}

void json_message(FILE *f, const ProtobufCMessage *m)
{
    fputc('{', f);
    json_message_members(f, m, false);
    fputc('}', f);
}
