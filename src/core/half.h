/* Half-precision conversions (fp16 and bf16, round to nearest even).
 *
 * They live in core/ because both sides need them: the safetensors reader
 * and writer (F16/BF16 tensors) and the models, which round weights and
 * prompts to fp16 as the official build_model computes with them.
 */
#ifndef RAMC_CORE_HALF_H
#define RAMC_CORE_HALF_H

#include <stdint.h>
#include <string.h>

/* The bits of a float32 and back, without aliasing casts. */
static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);

/* float32 -> bf16, nearest even; a NaN stays a (quiet) NaN. Inline: the bf16
 * products' activation rounding (kernels) runs it per element. */
static inline uint16_t f32_to_bf16(float f) {
    const uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}
/* Rounds x to the nearest fp16-representable float32 (as PyTorch .half().float()). */
float round_to_f16(float x);

#endif
