/**
 * A uPlot line chart. `data` is uPlot's columns: times (seconds) first, then one array per
 * series. The element carries what it plots as data attributes (points, the last and the
 * largest value of each series), so what the chart shows can be read from the DOM.
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface ChartProps {
  title: string;
  series: { label: string; stroke: string }[];
  data: number[][];
  testid: string;
}

const WIDTH = 520;
const HEIGHT = 220;

export function Chart({ title, series, data, testid }: ChartProps): preact.JSX.Element {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current;
    if (el === null) return undefined;
    const p = new uPlot({
      title, width: WIDTH, height: HEIGHT,
      scales: { x: { time: true } },
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 2 }))],
      axes: [{}, { size: 60 }],
    }, data as uPlot.AlignedData, el);
    plot.current = p;
    return () => {
      p.destroy();
      plot.current = null;
    };
    // The chart is made once; new data goes through setData below.
  }, []);
  useEffect(() => {
    plot.current?.setData(data as uPlot.AlignedData);
  }, [data]);
  const values = data.slice(1);
  const last = values.map((v) => v[v.length - 1] ?? 0);
  const max = values.map((v) => v.reduce((m, x) => Math.max(m, x), 0));
  return (
    <div class="chart" ref={box} data-testid={testid} data-points={String(data[0]?.length ?? 0)}
      data-last={JSON.stringify(last)} data-max={JSON.stringify(max)} />
  );
}
