/* fp16 and bf16 conversions (core/half.h). */
#include "core/half.h"

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        /* Subnormal: mant * 2^-24 is exact in float32. */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

/* Rounds m >> shift to nearest, ties to even. */
static uint32_t shift_rne(uint32_t m, int shift) {
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return r;
}

uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) /* NaN: keep it quiet and keep the top payload bits */
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    /* 65520 is halfway between 65504 (odd mantissa) and 2^16: ties go up to inf. */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);
    if (ax >= 0x38800000u) /* normal in half; a carry out of the mantissa bumps the exponent correctly */
        return (uint16_t)(sign | shift_rne(ax - 0x38000000u, 13));
    int e = (int)(ax >> 23);
    if (e < 102) return sign; /* below 2^-25: rounds to zero */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_rne(m, 126 - e));
}

float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

float round_to_f16(float x) { return f16_to_f32(f32_to_f16(x)); }
