// Schemas shared by routes (OpenAPI components come from these).
import { z } from 'zod';

export const errorResponseSchema = z
  .object({
    error: z.object({
      code: z.string().describe('Stable error code, see docs/errors.md'),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
      requestId: z.string().optional(),
    }),
  })
  .describe('Error');
