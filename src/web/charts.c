#include "web/charts.h"

#include <math.h>
#include <stdio.h>

#define WIDTH 760
#define HEIGHT 240
#define LEFT 70
#define RIGHT 12
#define TOP 14
#define BOTTOM 30

void format_bytes(double bytes, char *out, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, size, u == 0 || bytes >= 10 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

static void format_value(double v, enum chart_unit unit, char *out, size_t size)
{
    if (unit == UNIT_PERCENT)
        snprintf(out, size, "%.0f %%", v);
    else if (unit == UNIT_SECONDS)
        snprintf(out, size, v < 1 ? "%g ms" : "%g s", v < 1 ? v * 1000 : v);
    else
        format_bytes(v, out, size);
}

/* The axis top: the smallest 1, 2 or 5 times a power of the unit's base above `max`. */
static double nice_top(double max, enum chart_unit unit)
{
    double base = unit == UNIT_BYTES ? 1024 : 10, scale = 1;
    if (unit == UNIT_PERCENT)
        return 100;
    if (max <= 0)
        return unit == UNIT_SECONDS ? 0.001 : 1024;
    if (unit == UNIT_SECONDS) /* from 100 µs up: a hit's time is well under a second */
        scale = 1e-4;
    while (scale * base <= max)
        scale *= base;
    for (double step = 1; step <= base; step *= 2) {
        double top = (step == 4 ? 5 : step) * scale;
        if (top >= max)
            return top;
    }
    return base * scale;
}

/* How many steps the axis is cut into: a top of 5 units in fifths, since its quarters would read
 * 1.2 and 3.8; the other tops nice_top() gives (1, 2, 8, 16 ... units, 100 %) in quarters, each
 * of them a round value. */
static int grid_lines(double top, enum chart_unit unit)
{
    double base = unit == UNIT_BYTES ? 1024 : 10;
    if (unit == UNIT_PERCENT)
        return 4;
    while (top >= base)
        top /= base;
    return fabs(top - 5) < 1e-9 ? 5 : 4;
}

static void axis(struct buf *b, double top, enum chart_unit unit)
{
    double plot_h = HEIGHT - TOP - BOTTOM;
    int lines = grid_lines(top, unit);
    for (int i = 0; i <= lines; i++) {
        char text[32];
        double y = TOP + plot_h - plot_h * i / lines;
        format_value(top * i / lines, unit, text, sizeof(text));
        buf_addf(b,
                 "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
                 "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
                 LEFT, WIDTH - RIGHT, y, y, LEFT - 6, y + 4, text);
    }
}

static void legend(struct buf *b, const struct chart_series *series, int nseries)
{
    buf_add(b, "<div class=\"legend\">");
    for (int s = 0; s < nseries; s++) {
        buf_addf(b, "<span><i class=\"swatch %s\"></i>", series[s].klass);
        buf_html(b, series[s].name);
        buf_add(b, "</span>");
    }
    buf_add(b, "</div>");
}

void chart_bars(struct buf *b, const char *id, const char *title, int n, const char *const *labels,
                int label_every, const struct chart_series *series, int nseries,
                enum chart_unit unit)
{
    double max = 0, top, plot_w = WIDTH - LEFT - RIGHT, plot_h = HEIGHT - TOP - BOTTOM;
    double col_w = n > 0 ? plot_w / n : plot_w, bar_w = col_w * 0.8 / (nseries ? nseries : 1);

    for (int s = 0; s < nseries; s++)
        for (int i = 0; i < n; i++)
            max = fmax(max, series[s].values[i]); /* fmax passes over a NAN */
    top = nice_top(max, unit);
    buf_addf(b, "<figure class=\"chart\" id=\"%s\"><figcaption>", id);
    buf_html(b, title);
    buf_add(b, "</figcaption>");
    buf_addf(b, "<svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", WIDTH, HEIGHT);
    buf_html(b, title);
    buf_add(b, "\">");
    axis(b, top, unit);
    for (int i = 0; i < n; i++) {
        double x0 = LEFT + col_w * i + col_w * 0.1;
        for (int s = 0; s < nseries; s++) {
            char text[32];
            double v = series[s].values[i], h = top > 0 && !isnan(v) ? plot_h * v / top : 0;
            if (isnan(v))
                snprintf(text, sizeof(text), "%s", series[s].none ? series[s].none : "none");
            else
                format_value(v, unit, text, sizeof(text));
            buf_addf(b,
                     "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                     "height=\"%.1f\"><title>",
                     series[s].klass, x0 + bar_w * s, TOP + plot_h - h, bar_w, h);
            buf_html(b, labels[i]);
            buf_add(b, " — ");
            buf_html(b, series[s].name);
            buf_addf(b, ": %s</title></rect>", text);
        }
        if (label_every > 0 && i % label_every == 0) {
            buf_addf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                     LEFT + col_w * (i + 0.5), HEIGHT - 10);
            buf_html(b, labels[i]);
            buf_add(b, "</text>");
        }
    }
    buf_addf(b, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/></svg>", LEFT,
             WIDTH - RIGHT, HEIGHT - BOTTOM, HEIGHT - BOTTOM);
    legend(b, series, nseries);
    buf_add(b, "</figure>");
}

void chart_gauge(struct buf *b, const char *id, const char *title, int64_t used, int64_t total)
{
    double ratio = total > 0 ? (double)used / (double)total : 0, w = WIDTH - 2.0;
    const char *level = ratio >= 0.85 ? "danger" : ratio >= 0.60 ? "warning" : "ok";
    char u[32], t[32];
    if (ratio > 1)
        ratio = 1;
    format_bytes((double)used, u, sizeof(u));
    format_bytes((double)total, t, sizeof(t));
    buf_addf(b, "<figure class=\"chart gauge\" id=\"%s\"><figcaption>", id);
    buf_html(b, title);
    buf_addf(b,
             ": %s of %s (%.0f %%)</figcaption><svg viewBox=\"0 0 %d 28\" role=\"img\" "
             "aria-label=\"%s of %s\"><rect class=\"track\" x=\"1\" y=\"1\" width=\"%.1f\" "
             "height=\"26\" rx=\"4\"/><rect class=\"fill %s\" x=\"1\" y=\"1\" width=\"%.1f\" "
             "height=\"26\" rx=\"4\"><title>%s of %s</title></rect></svg></figure>",
             u, t, ratio * 100, WIDTH, u, t, w, level, w * ratio, u, t);
}
